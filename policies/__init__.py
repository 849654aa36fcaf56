"""Fighter policies: the network, the checkpoint format, and a compute benchmark.

    from policies import AgentCheckpoint
    model = AgentCheckpoint.load("runs/aggression-.../checkpoints/best.pt")
    actions, values = model.get_action_and_value(obs)   # numpy float32 (n, 30) in, numpy out

Names are imported lazily so that ``policies.runtime`` can set up the process before torch loads.
"""
import importlib

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


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'policies' has no attribute {name!r}")


def __dir__():
    return __all__
