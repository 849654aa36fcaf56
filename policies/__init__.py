"""Fighter policies: the network, the checkpoint format, export and numpy inference.

    from policies import AgentCheckpoint
    model = AgentCheckpoint.load("runs/aggression-.../checkpoints/best.pt")
    actions, values = model.get_action_and_value(obs)   # numpy float32 (n, 30) in, numpy out

Names are imported lazily so that ``policies.runtime`` can set up the process before torch loads.
"""

from common.lazy import lazy_exports

_EXPORTS = {
    "Policy": "policies.network",
    "layer_init": "policies.network",
    "sample_actions": "policies.network",
    "OBS_SIZE": "arena.spec",
    "NUM_ACTIONS": "arena.spec",
    "AgentCheckpoint": "policies.checkpoint",
    "CheckpointError": "policies.checkpoint",
    "atomic_torch_save": "policies.checkpoint",
    "read_checkpoint": "policies.checkpoint",
    "step_checkpoint_name": "policies.checkpoint",
    "LATEST_NAME": "policies.checkpoint",
    "BEST_NAME": "policies.checkpoint",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
