"""Export a trained fighter for inference outside Python: ONNX, browser weights and a manifest.

    python -m policies.export runs/aggression-.../checkpoints/best.pt --out exported/aggression
    python -m policies.export CHECKPOINT --out DIR --no-onnx      # without the onnx packages

Writes into DIR (created if needed), each file to a temporary name and then renamed:

=================== ==========================================================================
policy.onnx         observations float32 (batch, 30) -> logits float32 (batch, 10),
                    value float32 (batch,); needs ``pip install -e ".[export]"``
policy.safetensors  the weights, float32 little-endian, for web/policy.js and
                    policies.numpy_policy (format in that module's docstring)
manifest.json       what the files are: observation and action spec, fighter id, model
                    version, training step, file hashes; written last
=================== ==========================================================================

Before it finishes, the export checks that the weights file (numpy forward pass) and, when
onnxruntime is installed, the ONNX model give the checkpoint's logits on random observations.
docs/export.md has the details and how the game uses the files.
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
    POLICY_HEAD,
    TRUNK,
    VALUE_HEAD,
    WEIGHTS_FILENAME,
    WEIGHTS_FORMAT,
    WEIGHTS_FORMAT_VERSION,
    policy_from_weights,
    write_weights,
)

EXPORT_FORMAT = "wrestling-arena-export"
EXPORT_FORMAT_VERSION = 1
ONNX_FILENAME = "policy.onnx"
MANIFEST_FILENAME = "manifest.json"

ONNX_INPUT = "observations"
ONNX_OUTPUTS = ("logits", "value")

CHECK_OBSERVATIONS = 256
"""Random observations the export runs through torch and each exported file."""
CHECK_ATOL = 1e-5
"""Largest difference from torch's logits and values that an exported file may show, per unit
of the largest output magnitude (at least 1). float32 dot products summed in another order
differ by a few ulp of their largest terms: a confident policy (a behavioural clone's logits
reach 100-300 on the random check observations) differs from torch by 1e-5 to 1e-4 in absolute
terms with nothing wrong, while a wrong weight or layout differs by far more."""

OBSERVATION_LAYOUT = [
    "0-1: own position x, y / ring radius",
    "2: own health in [0, 1]",
    "3-4: own velocity vx, vy / max speed",
    "5+5k .. 9+5k for k = 0..4: k-th nearest standing enemy: relative x, y / radius, "
    "relative vx, vy / speed, health; zeros when there is no such enemy",
]
"""docs/arena.md ("Observation") has the exact formula and a JavaScript version."""

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
    network = {
        "obs_size": policy.obs_size,
        "num_actions": policy.num_actions,
        "hidden_size": policy.hidden_size,
        "activation": "relu",
        "trunk": list(TRUNK),
        "policy_head": POLICY_HEAD,
        "value_head": VALUE_HEAD,
    }
    check_obs = np.random.default_rng(0).normal(0.0, 1.0, (CHECK_OBSERVATIONS, policy.obs_size)).astype(np.float32)
    expected = _torch_forward(policy, check_obs)

    weights_path = out_dir / WEIGHTS_FILENAME
    write_weights(
        weights_path,
        state_dict,
        {"format": WEIGHTS_FORMAT, "format_version": WEIGHTS_FORMAT_VERSION, **network, **identity},
    )
    checks = {"numpy_max_abs_diff": _max_diff(policy_from_weights(weights_path).forward(check_obs), expected)}
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
        opset_used = _write_onnx(policy, onnx_path, opset, identity)
        files["onnx"] = {
            "path": ONNX_FILENAME,
            "opset": opset_used,
            "inputs": [{"name": ONNX_INPUT, "dtype": "float32", "shape": ["batch", policy.obs_size]}],
            "outputs": [
                {"name": "logits", "dtype": "float32", "shape": ["batch", policy.num_actions]},
                {"name": "value", "dtype": "float32", "shape": ["batch"]},
            ],
            **_file_facts(onnx_path),
        }
        onnx_diff = _onnxruntime_diff(onnx_path, check_obs, expected)
        if onnx_diff is not None:
            checks["onnxruntime_max_abs_diff"] = onnx_diff
    scale = max(1.0, max(float(np.abs(e).max()) for e in expected))
    for name, diff in checks.items():
        if not diff <= CHECK_ATOL * scale:
            raise ExportError(
                f"self-check failed: {name} = {diff:.3g} > {CHECK_ATOL} x {scale:.3g} (the largest "
                f"|output|) on {CHECK_OBSERVATIONS} random observations; the exported files do not "
                "reproduce the checkpoint"
            )

    manifest = {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_FORMAT_VERSION,
        **identity,
        "checkpoint": {"path": str(checkpoint.resolve()), **_file_facts(checkpoint)},
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "observation": {"shape": [policy.obs_size], "dtype": "float32", "layout": OBSERVATION_LAYOUT},
        "action": {
            "n": policy.num_actions,
            "meanings": ACTION_MEANINGS[: policy.num_actions],
            "greedy": "argmax of logits",
            "sampled": "a draw from softmax(logits)",
        },
        "network": network,
        "files": files,
        "checks": {**{k: float(v) for k, v in checks.items()}, "observations": CHECK_OBSERVATIONS},
        "metrics": _jsonable(ckpt.metrics),
    }
    atomic_write_bytes(out_dir / MANIFEST_FILENAME, (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest


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


def _torch_forward(policy, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import torch

    with torch.no_grad():
        logits, values = policy(torch.from_numpy(obs))
    return logits.numpy(), values.numpy()


def _max_diff(got, expected) -> float:
    return max(float(np.abs(np.asarray(g) - e).max()) for g, e in zip(got, expected, strict=True))


def _write_onnx(policy, path: Path, opset: int | None, identity: dict) -> int:
    """torch.onnx.export (the torch.export-based exporter) with a dynamic batch axis."""
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
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # "torchvision is not installed" and similar notes
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                policy,
                (torch.zeros(2, policy.obs_size),),
                input_names=[ONNX_INPUT],
                output_names=list(ONNX_OUTPUTS),
                dynamic_shapes={"x": {0: batch}},
                opset_version=opset,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    finally:
        exporter_log.setLevel(level)
    model = program.model_proto
    model.graph.input[0].doc_string = f"float32 (batch, {policy.obs_size}): one observation per row"
    model.graph.output[0].doc_string = f"float32 (batch, {policy.num_actions}): action logits; argmax is greedy"
    model.graph.output[1].doc_string = "float32 (batch,): the critic's value estimate"
    for key, value in {"format": EXPORT_FORMAT, **identity}.items():
        model.metadata_props.add(key=key, value=json.dumps(value) if not isinstance(value, str) else value)
    onnx.checker.check_model(model)
    atomic_write_bytes(path, model.SerializeToString())
    return int(next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")))


def _onnxruntime_diff(path: Path, obs: np.ndarray, expected) -> float | None:
    try:
        import onnxruntime
    except ImportError:
        return None  # the check is optional; onnx itself validated the graph
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return _max_diff(session.run(list(ONNX_OUTPUTS), {ONNX_INPUT: obs}), expected)


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
