"""Golden runs: short training commands whose results must not change when the code is reorganised.

Each run is a real command line (``python train.py ...``) in a subprocess. Its fingerprint is
read from the files it leaves, through public formats only (checkpoint files, TensorBoard
events, summary.json, the run folder's layout), so the same fingerprint can be taken of any
version of the trainer. tests/golden/<name>.json holds the fingerprints recorded before the
training core was reorganised (issue 23); tests/test_golden.py runs the commands again and
compares, bit for bit.

Floating-point results depend on the CPU's instruction set (MKL and ATen pick AVX2 or AVX-512
kernels at run time, and their sums round differently). The runs therefore pin the portable
code paths (MKL_CBWR=COMPATIBLE, ATEN_CPU_CAPABILITY=default, ONEDNN_MAX_CPU_ISA=SSE41) and
one thread, so that any x86-64 machine computes the same bits.

    python tests/golden_runs.py --record              # rewrite tests/golden/*.json (all runs)
    python tests/golden_runs.py --record aggression   # one run
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN_DIR = Path(__file__).resolve().parent / "golden"

PINNED_ENV = {
    "MKL_CBWR": "COMPATIBLE",
    "ATEN_CPU_CAPABILITY": "default",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
}
"""Portable, single-threaded numerics: the same bits on every x86-64 CPU."""

TIMING_TAGS = ("charts/SPS", "charts/samples_per_s")
"""Scalars that measure the machine, not the run (with every perf/* tag)."""
VOLATILE_KEYS = {
    "run_dir",
    "config",
    "tensorboard",
    "latest",
    "best",
    "final",
    "finished_at",
    "wall_time_s",
    "run_time_s",
    "sps",
    "time_split_s",
    "samples_per_s",
    "load_time_s",
    "checkpoint",
    "created_at",
    "device",
    "path",
}
"""summary.json keys that hold paths, times or speeds."""

TINY_MODE = (
    "extends: {configs}/chaser-duel.yaml\nenv: {{num_arenas: 32}}\n"
    "train: {{num_steps: 16, total_timesteps: 1500}}\neval: {{interval: 2, matches: 8}}\n"
    "torch_threads: 1\n"
)
"""A mode config that trains a specialist in seconds (written into the work folder)."""

SMALL = [
    "--seed",
    "7",
    "--torch_threads",
    "1",
    "--log_interval",
    "0.01",
    "--env.num_arenas",
    "32",
    "--train.num_steps",
    "16",
]


def golden_commands(work: Path) -> dict[str, list[str]]:
    """name -> train.py arguments (a run folder is added); paths inside ``work``."""
    mode = work / "tiny_aggression.yaml"
    league = ["--league.snapshot_interval", "600", "--league.rating_interval", "1"]
    return {
        # Three updates of the default config (a league of wide bots, snapshots and a tiny
        # chaser-duel specialist it starts from) with periodic gauntlet evaluations and checkpoints.
        "aggression": [
            "configs/aggression.yaml",
            *SMALL,
            *league,
            "--league.specialists",
            f"[{{config: {mode}, seed: 101}}]",
            "--league.init_from",
            "tiny_aggression_s101",
            "--train.total_timesteps",
            "2400",
            "--eval.interval",
            "1",
            "--eval.matches",
            "8",
            "--eval.final_matches",
            "8",
            "--checkpoint_interval",
            "2",
        ],
        # Self-play: a specialist trained first, the learner started from it, snapshots, prioritised
        # draws, greedy shares, share caps and the final replay of the best candidates.
        "selfplay": [
            "configs/selfplay.yaml",
            *SMALL,
            *league,
            "--train.total_timesteps",
            "3000",
            "--league.specialists",
            f"[{{config: {mode}, seed: 101}}]",
            "--league.init_from",
            "tiny_aggression_s101",
            "--eval.interval",
            "2",
            "--eval.matches",
            "8",
            "--eval.final_candidates",
            "2",
            "--eval.final_matches",
            "8",
        ],
        # The curriculum: duels, then a four-fighter ring with two learner slots.
        "curriculum": [
            "configs/tournament.yaml",
            *SMALL,
            *league,
            "--train.total_timesteps",
            "3000",
            "--league.stages",
            "[{name: duel, fighters: 2, bots: 1.0, latest: 0.0, past: 0.0, "
            "promote: {max_steps: 1200}}, {name: ffa, fighters: 4, learners: 2, num_arenas: 8}]",
            "--eval.interval",
            "2",
            "--eval.matches",
            "4",
        ],
        # Behavioural cloning from recorded chaser matches (the database is written first).
        "imitation": [
            "configs/imitation.yaml",
            "--seed",
            "7",
            "--torch_threads",
            "1",
            "--log_interval",
            "60",
            "--db",
            str(work / "frames.db"),
            "--imitation.epochs",
            "6",
            "--imitation.holdout",
            "0.2",
            "--eval.matches",
            "8",
        ],
    }


def prepare(work: Path) -> None:
    """The inputs the commands read: the tiny specialist config and the recorded frames."""
    (work / "tiny_aggression.yaml").write_text(TINY_MODE.format(configs=ROOT / "configs"))
    script = (
        "import sys; sys.path.insert(0, sys.argv[2])\n"
        "from demos.clone_chaser import play_chaser_matches\n"
        "from storage import Database\n"
        "with Database.open(sys.argv[1]) as db:\n"
        "    fighter = db.register_fighter('chaser.glb', {'bot': 'chaser'})\n"
        "    for frames, outcome in play_chaser_matches(24, seed=5):\n"
        "        episode = db.create_episode(fighter)\n"
        "        db.add_frames(episode, frames)\n"
        "        db.complete_episode(episode, outcome.total_reward, outcome.duration_frames,\n"
        "                            outcome.is_victory, outcome.rank)\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(work / "frames.db"), str(ROOT)], check=True, cwd=ROOT, env=pinned_env()
    )


def pinned_env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT), **PINNED_ENV)


def run(name: str, work: Path) -> dict:
    """Run one golden command in ``work``; return its fingerprint."""
    run_dir = work / name
    args = golden_commands(work)[name]
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args, "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=pinned_env(),
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"golden run {name} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return fingerprint(run_dir)


# ---------------------------------------------------------------------------------------------
# Fingerprints
# ---------------------------------------------------------------------------------------------
def _tensor_digest(tensors: dict) -> str:
    import torch

    digest = hashlib.sha256()
    for key in sorted(tensors):
        value = tensors[key]
        digest.update(str(key).encode())
        if isinstance(value, torch.Tensor):
            digest.update(str(value.dtype).encode() + str(tuple(value.shape)).encode())
            digest.update(
                value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b""
            )
        elif isinstance(value, dict):
            digest.update(_tensor_digest(value).encode())
        else:
            digest.update(repr(value).encode())
    return digest.hexdigest()[:24]


def _clean(value, root: str):
    """summary/metrics data without paths, times and speeds; floats as exact reprs."""
    if isinstance(value, dict):
        return {k: _clean(v, root) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, (list, tuple)):
        return [_clean(v, root) for v in value]
    if isinstance(value, float):
        return repr(value) if not math.isfinite(value) else float.hex(value)
    if isinstance(value, str):
        return value.replace(root, "<run>")
    return value


def checkpoint_fingerprint(path: Path, root: str) -> dict:
    import torch

    data = torch.load(path, map_location="cpu", weights_only=True)
    trainer = data.get("trainer_state") or {}
    optimizer = trainer.get("optimizer") if isinstance(trainer, dict) else None
    return {
        "weights": _tensor_digest(data["state_dict"]),
        "model_version": data.get("model_version"),
        "global_step": data.get("global_step"),
        "metrics": _clean(data.get("metrics") or {}, root),
        "optimizer": _tensor_digest(optimizer["state"]) if optimizer else None,
    }


def scalar_fingerprint(run_dir: Path) -> dict:
    """tag -> [[step, value as float.hex], ...] of every TensorBoard scalar except timings,
    plus a digest of every image (the evaluation replays)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    out = {}
    for tag in sorted(events.Tags()["scalars"]):
        if tag in TIMING_TAGS or tag.startswith("perf/"):
            continue
        out[tag] = [[e.step, float.hex(float(e.value))] for e in events.Scalars(tag)]
    for tag in sorted(events.Tags()["images"]):
        out["image:" + tag] = [
            [e.step, hashlib.sha256(e.encoded_image_string).hexdigest()[:24]] for e in events.Images(tag)
        ]
    return out


def fingerprint(run_dir: Path) -> dict:
    root = str(run_dir)
    files = sorted(
        str(p.relative_to(run_dir))
        for p in run_dir.rglob("*")
        if p.is_file() and "events.out.tfevents" not in p.name and not p.name.endswith(".tmp")
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "files": files,
        "checkpoints": {f: checkpoint_fingerprint(run_dir / f, root) for f in files if f.endswith(".pt")},
        "scalars": scalar_fingerprint(run_dir),
        "summary": _clean(summary, root),
    }


def record(names) -> None:
    GOLDEN_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prepare(work)
        for name in names:
            result = run(name, work)
            (GOLDEN_DIR / f"{name}.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
            print(f"recorded {name}: {len(result['checkpoints'])} checkpoints, {len(result['scalars'])} tags")


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0] != "--record":
        sys.exit(__doc__)
    record(args[1:] or list(golden_commands(Path("."))))
