"""Export a trained fighter for inference outside Python: ONNX, browser weights and a manifest.

    python -m policies.export runs/aggression-.../checkpoints/best.pt --out exported/aggression
    python -m policies.export CHECKPOINT --out DIR --no-onnx      # without the onnx packages

Writes into DIR (created if needed), each file to a temporary name and then renamed:

=================== ==========================================================================
policy.onnx         kind mlp: observations float32 (batch, obs) -> logits float32 (batch, 10),
                    value float32 (batch,); kind lstm: observations, h, c (batch, hidden) ->
                    logits, value, h_out, c_out (batch, hidden). Needs ``pip install -e ".[export]"``
policy.safetensors  the weights, float32 little-endian, for web/policy.js and
                    policies.numpy_policy (format in that module's docstring)
manifest.json       what the files are: network kind, observation kind, size and layout, the
                    state a recurrent network carries, actions, fighter id, model version,
                    training step, file hashes; written last
=================== ==========================================================================

The ONNX model of a recurrent (lstm) checkpoint is one decision: the caller keeps each
fighter's (h, c) row, feeds h_out and c_out back at the fighter's next decision, and starts
every match with zeros; there is no reset input, since zeroing a row is what a reset does.

Before it finishes, the export checks that the weights file (numpy forward pass) and, when
onnxruntime is installed, the ONNX model give the checkpoint's logits and values: on random
observations, and for a recurrent network on sequences that carry the state from step to
step and reset some fighters on the way. docs/export.md has the details and how the game
uses the files.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import logging
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from common.files import atomic_write_bytes
from policies.numpy_policy import (
    WEIGHTS_FILENAME,
    network_metadata,
    policy_from_weights,
    weights_metadata,
    write_weights,
)

EXPORT_FORMAT = "wrestling-arena-export"
EXPORT_FORMAT_VERSION = 1
ONNX_FILENAME = "policy.onnx"
MANIFEST_FILENAME = "manifest.json"

ONNX_INPUT = "observations"
ONNX_OUTPUTS = ("logits", "value")
ONNX_STATE_INPUTS = ("h", "c")
"""A recurrent model's further inputs: the LSTM state (h, c) of each row's fighter, zeros at a match start."""
ONNX_STATE_OUTPUTS = ("h_out", "c_out")
"""A recurrent model's further outputs: the state to give as (h, c) at the fighter's next decision."""

CHECK_OBSERVATIONS = 256
"""Random observations the export runs through torch and each exported file."""
CHECK_FIGHTERS, CHECK_STEPS = 16, 16
"""A recurrent network's check: CHECK_FIGHTERS sequences of CHECK_STEPS decisions (CHECK_OBSERVATIONS in all)."""
CHECK_RESET_RATE = 0.1
"""The share of a recurrent check's decisions before which the fighter's memory is reset."""
CHECK_ATOL = 1e-5
"""Largest difference from torch's logits and values that an exported file may show, per unit
of the largest output magnitude (at least 1). float32 dot products summed in another order
differ by a few ulp of their largest terms: a confident policy (a behavioural clone's logits
reach 100-300 on the random check observations) differs from torch by 1e-5 to 1e-4 in absolute
terms with nothing wrong, while a wrong weight or layout differs by far more."""

BASIC_LAYOUT = [
    "0-1: own position x, y / ring radius",
    "2: own health in [0, 1]",
    "3-4: own velocity vx, vy / max speed",
    "5+5k .. 9+5k for k = 0..4: k-th nearest standing enemy: relative x, y / radius, "
    "relative vx, vy / speed, health; zeros when there is no such enemy",
]
OBSERVATION_LAYOUT = {
    "basic": BASIC_LAYOUT,
    "full": [
        *BASIC_LAYOUT,
        "30: own attack cooldown left / the cooldown, in [0, 1]",
        "31-32: cos, sin of own facing",
        "33+3k .. 35+3k for k = 0..4: the same three for the k-th nearest standing enemy (the "
        "order of 5-29); zeros when there is no such enemy",
    ],
}
"""Each observation kind's numbers (arena.spec.OBSERVATIONS: basic 30, full 48); docs/arena.md
("Observation") has the exact formula and a JavaScript version, arena/reference.py the full one's."""

ACTION_MEANINGS = [
    "north (+y)",
    "north-east",
    "east (+x)",
    "south-east",
    "south (-y)",
    "south-west",
    "west (-x)",
    "north-west",
    "idle",
    "attack",
]
"""Discrete(10): 0-7 accelerate towards a compass direction, 8 idle, 9 attack."""


class ExportError(Exception):
    """A user error: a missing or unreadable checkpoint, an unusable output folder, a missing package."""


def export_checkpoint(checkpoint, out_dir, onnx: bool = True, opset: int | None = None) -> dict:
    """Write policy.onnx (unless ``onnx`` is False), policy.safetensors and manifest.json
    into ``out_dir`` for the checkpoint file ``checkpoint``; return the manifest."""
    from policies.checkpoint import AgentCheckpoint, CheckpointError

    checkpoint = Path(checkpoint)
    try:
        ckpt = AgentCheckpoint.load(checkpoint)
    except (FileNotFoundError, CheckpointError) as e:
        raise ExportError(str(e)) from None
    out_dir = _output_folder(out_dir)
    policy = ckpt.policy.cpu().eval()
    state_dict = {k: v.detach().numpy() for k, v in policy.state_dict().items()}
    identity = {
        "fighter_id": ckpt.fighter_id,
        "model_version": int(ckpt.model_version),
        "global_step": int(ckpt.global_step),
    }
    network = network_metadata(policy.kind, policy.obs_size, policy.num_actions, policy.hidden_size)
    check = _CheckInputs(policy)
    expected = check.run(_torch_step(policy))

    weights_path = out_dir / WEIGHTS_FILENAME
    write_weights(weights_path, state_dict, weights_metadata(network, ckpt.observation, identity))
    checks = {"numpy_max_abs_diff": _max_diff(check.run(_numpy_step(policy_from_weights(weights_path))), expected)}
    files = {
        "weights": {
            "path": WEIGHTS_FILENAME,
            "format": "safetensors",
            "dtype": "float32",
            "byteorder": "little",
            "tensors": list(state_dict),
            **_file_facts(weights_path),
        }
    }
    if onnx:
        onnx_path = out_dir / ONNX_FILENAME
        inputs, outputs = _onnx_signature(policy)
        opset_used = _write_onnx(
            policy, onnx_path, opset, {"kind": policy.kind, "observation": ckpt.observation, **identity}
        )
        files["onnx"] = {"path": ONNX_FILENAME, "opset": opset_used, "inputs": inputs, "outputs": outputs}
        files["onnx"].update(_file_facts(onnx_path))
        step = _onnxruntime_step(onnx_path, policy.recurrent)
        if step is not None:
            checks["onnxruntime_max_abs_diff"] = _max_diff(check.run(step), expected)
    scale = max(1.0, max(float(np.abs(e).max()) for e in expected))
    for name, diff in checks.items():
        if not diff <= CHECK_ATOL * scale:
            raise ExportError(
                f"self-check failed: {name} = {diff:.3g} > {CHECK_ATOL} x {scale:.3g} (the largest "
                f"|output|) on {check.describe()}; the exported files do not reproduce the checkpoint"
            )

    manifest = {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_FORMAT_VERSION,
        **identity,
        "checkpoint": {"path": str(checkpoint.resolve()), **_file_facts(checkpoint)},
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "observation": {
            "kind": ckpt.observation,
            "shape": [policy.obs_size],
            "dtype": "float32",
            "layout": OBSERVATION_LAYOUT.get(ckpt.observation),
        },
        "action": {
            "n": policy.num_actions,
            "meanings": ACTION_MEANINGS[: policy.num_actions],
            "greedy": "argmax of logits",
            "sampled": "a draw from softmax(logits)",
        },
        "network": network,
        "state": _state_description(policy),
        "files": files,
        "checks": {**{k: float(v) for k, v in checks.items()}, **check.facts()},
        "metrics": _jsonable(ckpt.metrics),
    }
    atomic_write_bytes(out_dir / MANIFEST_FILENAME, (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest


def _state_description(policy) -> dict | None:
    """The manifest's ``state``: what a recurrent network carries from decision to decision (None for mlp)."""
    if not policy.recurrent:
        return None
    shape = {"dtype": "float32", "shape": ["batch", policy.hidden_size]}
    return {
        "h": shape,
        "c": dict(shape),
        "initial": "zeros",
        "carry": "keep one (h, c) row per fighter; give its decision's h_out, c_out as h, c at its next decision",
        "reset": "zeros again in the fighter's row of h and c at the first decision of each match",
    }


class _CheckInputs:
    """The self-check's inputs, and runs of them through one implementation's step function.

    A step is ``step(obs (n, obs), state, reset (n,) bool or None) -> (logits, values, state)``
    with numpy in and out; state is None for a feed-forward network. A feed-forward check is one
    step on CHECK_OBSERVATIONS rows; a recurrent one is CHECK_STEPS steps of CHECK_FIGHTERS rows
    from a random mid-match state, with random resets, and compares every step's outputs and the
    final state."""

    def __init__(self, policy):
        rng = np.random.default_rng(0)
        self.recurrent = policy.recurrent
        if not self.recurrent:
            self.obs = rng.normal(0.0, 1.0, (1, CHECK_OBSERVATIONS, policy.obs_size)).astype(np.float32)
            self.resets = np.zeros((1, CHECK_OBSERVATIONS), bool)
            self.state = None
            return
        shape = (CHECK_STEPS, CHECK_FIGHTERS, policy.obs_size)
        self.obs = rng.normal(0.0, 1.0, shape).astype(np.float32)
        self.resets = rng.random(shape[:2]) < CHECK_RESET_RATE
        state = rng.uniform(-1.0, 1.0, (2, CHECK_FIGHTERS, policy.hidden_size)).astype(np.float32)
        self.state = (state[0], state[1])

    def run(self, step) -> tuple[np.ndarray, ...]:
        """(logits (T, n, A), values (T, n)), then h and c after the last step for a recurrent network."""
        state, logits, values = self.state, [], []
        for obs, reset in zip(self.obs, self.resets, strict=True):
            step_logits, step_values, state = step(obs, state, reset if self.recurrent else None)
            logits.append(step_logits)
            values.append(step_values)
        outputs = (np.stack(logits), np.stack(values))
        return outputs if state is None else (*outputs, *state)

    def describe(self) -> str:
        if not self.recurrent:
            return f"{CHECK_OBSERVATIONS} random observations"
        return (
            f"{CHECK_FIGHTERS} sequences of {CHECK_STEPS} random observations carrying the state, "
            f"with {int(self.resets.sum())} resets"
        )

    def facts(self) -> dict:
        if not self.recurrent:
            return {"observations": CHECK_OBSERVATIONS}
        return {
            "observations": int(self.obs.shape[0] * self.obs.shape[1]),
            "sequences": CHECK_FIGHTERS,
            "steps": CHECK_STEPS,
            "resets": int(self.resets.sum()),
        }


def _torch_step(policy):
    import torch

    @torch.no_grad()
    def step(obs, state, reset):
        x = torch.from_numpy(obs)
        if state is None:
            logits, values = policy(x)
            return logits.numpy(), values.numpy(), None
        h, c = (torch.from_numpy(part) for part in state)
        logits, values, (h, c) = policy(x, (h, c), torch.from_numpy(reset))
        return logits.numpy(), values.numpy(), (h.numpy(), c.numpy())

    return step


def _numpy_step(policy):
    def step(obs, state, reset):
        if state is None:
            return (*policy.forward(obs), None)
        return policy.forward(obs, state, reset)

    return step


def _onnxruntime_step(path: Path, recurrent: bool):
    """A step through onnxruntime, or None when it is not installed (the check is optional; onnx
    itself validated the graph). A reset is the caller's: zeros in the fighter's rows of h and c."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def step(obs, state, reset):
        if not recurrent:
            return (*session.run(list(ONNX_OUTPUTS), {ONNX_INPUT: obs}), None)
        h, c = (np.where(reset[:, None], np.float32(0), part) for part in state)
        feeds = {ONNX_INPUT: obs, ONNX_STATE_INPUTS[0]: h, ONNX_STATE_INPUTS[1]: c}
        logits, values, h, c = session.run([*ONNX_OUTPUTS, *ONNX_STATE_OUTPUTS], feeds)
        return logits, values, (h, c)

    return step


def _onnx_signature(policy) -> tuple[list[dict], list[dict]]:
    """The ONNX model's inputs and outputs as the manifest lists them (name, dtype, shape)."""

    def tensor(name, *shape):
        return {"name": name, "dtype": "float32", "shape": ["batch", *shape]}

    inputs = [tensor(ONNX_INPUT, policy.obs_size)]
    outputs = [tensor("logits", policy.num_actions), tensor("value")]
    if policy.recurrent:
        inputs += [tensor(name, policy.hidden_size) for name in ONNX_STATE_INPUTS]
        outputs += [tensor(name, policy.hidden_size) for name in ONNX_STATE_OUTPUTS]
    return inputs, outputs


def _output_folder(out_dir) -> Path:
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"--out {str(out_dir)!r} is a file; give a folder (it is created if missing)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out_dir).close()
    except OSError as e:
        raise ExportError(
            f"cannot write to the output folder {str(out_dir)!r}: {e.strerror or e}; pick another --out"
        ) from None
    return out_dir


def _max_diff(got, expected) -> float:
    return max(float(np.abs(np.asarray(g) - e).max()) for g, e in zip(got, expected, strict=True))


ONNX_DOCS = {
    ONNX_INPUT: "float32 (batch, {obs}): one observation per row",
    "logits": "float32 (batch, {actions}): action logits; argmax is greedy",
    "value": "float32 (batch,): the critic's value estimate",
    "h": "float32 (batch, {hidden}): each row's LSTM h from its fighter's previous decision; zeros at a match start",
    "c": "float32 (batch, {hidden}): each row's LSTM c from its fighter's previous decision; zeros at a match start",
    "h_out": "float32 (batch, {hidden}): the new h, to give as h at the fighter's next decision",
    "c_out": "float32 (batch, {hidden}): the new c, to give as c at the fighter's next decision",
}


def _write_onnx(policy, path: Path, opset: int | None, properties: dict) -> int:
    """torch.onnx.export (the torch.export-based exporter) with a dynamic batch axis: one
    decision, with the LSTM state as further inputs and outputs for a recurrent network."""
    import torch

    try:
        import onnx
        import onnxscript  # noqa: F401  (the exporter needs it; import here for a clear error)
    except ImportError as e:
        raise ExportError(
            f"ONNX export needs the {e.name!r} package: pip install -e '.[export]' "
            "(or pass --no-onnx to write only the browser weights)"
        ) from None
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    observations = torch.zeros(2, policy.obs_size)
    if policy.recurrent:
        module, args = _recurrent_step(policy), (observations, *policy.initial_state(2, "cpu"))
        dynamic_shapes = {name: {0: batch} for name in (ONNX_INPUT, *ONNX_STATE_INPUTS)}
        names = [ONNX_INPUT, *ONNX_STATE_INPUTS], [*ONNX_OUTPUTS, *ONNX_STATE_OUTPUTS]
    else:
        module, args = policy, (observations,)
        dynamic_shapes = {"x": {0: batch}}
        names = [ONNX_INPUT], list(ONNX_OUTPUTS)
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # "torchvision is not installed" and similar notes
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                args,
                input_names=names[0],
                output_names=names[1],
                dynamic_shapes=dynamic_shapes,
                opset_version=opset,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    finally:
        exporter_log.setLevel(level)
    model = program.model_proto
    sizes = {"obs": policy.obs_size, "actions": policy.num_actions, "hidden": policy.hidden_size}
    for value in [*model.graph.input, *model.graph.output]:
        value.doc_string = ONNX_DOCS[value.name].format(**sizes)
    for key, value in {"format": EXPORT_FORMAT, **properties}.items():
        model.metadata_props.add(key=key, value=json.dumps(value) if not isinstance(value, str) else value)
    onnx.checker.check_model(model)
    atomic_write_bytes(path, model.SerializeToString())
    return int(next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")))


def _recurrent_step(policy):
    """A RecurrentPolicy as one ONNX decision: forward(observations, h, c) -> logits, value, h_out, c_out."""
    import torch

    class RecurrentStep(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.policy = policy

        def forward(self, observations, h, c):
            logits, value, (h_out, c_out) = self.policy(observations, (h, c))
            return logits, value, h_out, c_out

    return RecurrentStep()


def _file_facts(path: Path) -> dict:
    data = Path(path).read_bytes()
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _jsonable(value):
    """Metrics as plain JSON (numpy scalars to numbers, non-finite floats to None)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return str(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policies.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a checkpoint file from train.py (e.g. runs/NAME/checkpoints/best.pt)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    parser.add_argument("--no-onnx", action="store_true", help="write only the browser weights and the manifest")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    args = parser.parse_args(argv)
    try:
        manifest = export_checkpoint(args.checkpoint, args.out, onnx=not args.no_onnx, opset=args.opset)
    except ExportError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 1
    out = Path(args.out)
    print(
        f"fighter {manifest['fighter_id']}, model version {manifest['model_version']}, step {manifest['global_step']:,}"
    )
    for entry in manifest["files"].values():
        print(f"wrote {out / entry['path']} ({entry['bytes']:,} bytes)")
    print(f"wrote {out / MANIFEST_FILENAME}")
    print(
        "checks: "
        + ", ".join(f"{k} {v:.2g}" for k, v in manifest["checks"].items() if k != "observations")
        + f" on {manifest['checks']['observations']} observations"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
