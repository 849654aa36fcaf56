"""python -m policies.export: ONNX and the weights file reproduce torch; the numpy policy and
the torch-free checkpoint reader; clear errors for bad checkpoints and output folders."""

import hashlib
import json
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from policy_files import arena_observations, make_checkpoint, torch_outputs

from policies.export import export_checkpoint, main
from policies.numpy_policy import NumpyPolicy, WeightsError, load_policy, read_weights
from policies.torch_zip import read_torch_checkpoint

ROOT = Path(__file__).resolve().parent.parent
ATOL = 1e-5


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    checkpoint = make_checkpoint(tmp / "checkpoints" / "step_000000004096.pt", fighter_id=7, model_version=3)
    manifest = export_checkpoint(checkpoint, tmp / "out")
    return checkpoint, tmp / "out", manifest


@pytest.fixture(scope="module")
def observations():
    random_rows = np.random.default_rng(1).normal(0.0, 1.0, (1000, 30)).astype(np.float32)
    return np.concatenate([arena_observations(2000), random_rows])


def test_onnx_equals_torch_in_onnxruntime(exported, observations):
    checkpoint, out, _ = exported
    session = onnxruntime.InferenceSession(str(out / "policy.onnx"), providers=["CPUExecutionProvider"])
    [inp] = session.get_inputs()
    assert (inp.name, inp.shape, inp.type) == ("observations", ["batch", 30], "tensor(float)")
    assert [(o.name, o.shape) for o in session.get_outputs()] == [("logits", ["batch", 10]), ("value", ["batch"])]
    expected_logits, expected_values = torch_outputs(checkpoint, observations)
    for rows in (slice(0, 1), slice(0, 7), slice(None)):  # the batch axis is dynamic
        logits, values = session.run(None, {"observations": observations[rows]})
        np.testing.assert_allclose(logits, expected_logits[rows], rtol=0, atol=ATOL)
        np.testing.assert_allclose(values, expected_values[rows], rtol=0, atol=ATOL)
    meta = session.get_modelmeta().custom_metadata_map
    assert (meta["fighter_id"], meta["model_version"], meta["global_step"]) == ("7", "3", "4096")


def test_weights_file_round_trip_with_the_numpy_forward_pass(exported, observations):
    checkpoint, out, _ = exported
    tensors, meta = read_weights(out / "policy.safetensors")
    state_dict = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert list(tensors) == list(state_dict)
    for name, value in state_dict.items():  # bit for bit
        np.testing.assert_array_equal(tensors[name], value.numpy())
    assert meta["format"] == "wrestling-arena-policy" and json.loads(meta["trunk"]) == ["network.0", "network.2"]
    policy = load_policy(out / "policy.safetensors")
    assert policy.metadata == {"fighter_id": 7, "model_version": 3, "global_step": 4096}
    logits, values = policy.forward(observations)
    expected_logits, expected_values = torch_outputs(checkpoint, observations)
    np.testing.assert_allclose(logits, expected_logits, rtol=0, atol=ATOL)
    np.testing.assert_allclose(values, expected_values, rtol=0, atol=ATOL)
    np.testing.assert_array_equal(policy.act(observations), expected_logits.argmax(1))
    header_length = int.from_bytes((out / "policy.safetensors").read_bytes()[:8], "little")
    assert (8 + header_length) % 8 == 0  # the data is aligned for in-place float32 views


def test_checkpoint_read_without_torch(exported, observations):
    checkpoint, _, _ = exported
    policy = load_policy(checkpoint)
    assert policy.metadata == {"fighter_id": 7, "model_version": 3, "global_step": 4096}
    expected_logits, expected_values = torch_outputs(checkpoint, observations)
    np.testing.assert_allclose(policy.forward(observations)[0], expected_logits, rtol=0, atol=ATOL)
    data = read_torch_checkpoint(checkpoint, keep=("state_dict",))
    assert data["global_step"] == 4096 and data["config"] == {"name": "test", "seed": 0}
    assert data["trainer_state"]["best_score"] == [-float("inf"), 0.25]
    # In a process where importing torch fails:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from policies.numpy_policy import load_policy\n"
        f"print(load_policy({str(checkpoint)!r}).act([[0.5] * 30])[0])"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) == torch_outputs(checkpoint, np.full((1, 30), 0.5, np.float32))[0].argmax()


def test_manifest_describes_the_files(exported):
    checkpoint, out, manifest = exported
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "policy.onnx", "policy.safetensors"]
    assert (manifest["fighter_id"], manifest["model_version"], manifest["global_step"]) == (7, 3, 4096)
    assert manifest["observation"]["shape"] == [30] and manifest["action"]["n"] == 10
    assert manifest["action"]["meanings"][8:] == ["idle", "attack"]
    for entry in [*manifest["files"].values(), manifest["checkpoint"]]:
        path = out / entry["path"] if "/" not in entry["path"] else Path(entry["path"])
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    onnx = manifest["files"]["onnx"]
    assert onnx["inputs"] == [{"name": "observations", "dtype": "float32", "shape": ["batch", 30]}]
    assert [o["name"] for o in onnx["outputs"]] == ["logits", "value"]
    assert manifest["checks"]["numpy_max_abs_diff"] < ATOL and manifest["checks"]["onnxruntime_max_abs_diff"] < ATOL


def test_numpy_sampling_follows_the_policy():
    rng = np.random.default_rng(0)
    head = np.log(np.array([[0.5], [0.3], [0.15], [0.05]], np.float32))  # logits from a constant input
    policy = NumpyPolicy([], (head, np.zeros(4, np.float32)), (np.zeros((1, 1), np.float32), np.zeros(1, np.float32)))
    obs = np.ones((40_000, 1), np.float32)
    counts = np.bincount(policy.act(obs, greedy=False, rng=rng), minlength=4)
    np.testing.assert_allclose(counts / len(obs), [0.5, 0.3, 0.15, 0.05], atol=0.01)
    again = policy.act(obs[:100], greedy=False, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(again, policy.act(obs[:100], greedy=False, rng=np.random.default_rng(5)))
    with pytest.raises(ValueError, match="rng"):
        policy.act(obs, greedy=False)
    with pytest.raises(ValueError, match=r"shape \(n, 1\)"):
        policy.forward(np.ones((3, 2), np.float32))


def test_cli_smoke(exported, tmp_path):
    checkpoint, _, _ = exported
    """The entry point, with --no-onnx (the ONNX path is the fixture's, in process)."""
    run = subprocess.run(
        [sys.executable, "-m", "policies.export", str(checkpoint), "--out", str(tmp_path / "cli"), "--no-onnx"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "policy.safetensors" in run.stdout and "manifest.json" in run.stdout and "model version 3" in run.stdout
    assert {p.name for p in (tmp_path / "cli").iterdir()} == {"manifest.json", "policy.safetensors"}
    assert "onnx" not in json.loads((tmp_path / "cli" / "manifest.json").read_text())["files"]


def _truncated(source: Path, dest: Path) -> Path:
    dest.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    return dest


@pytest.mark.parametrize(
    "kind, needle",
    [
        ("missing", "does not exist"),
        ("truncated", "not a readable checkpoint"),
        ("text", "not a readable checkpoint"),
        ("foreign", "is not a wrestling-arena-agent checkpoint"),
        ("folder", "is a folder"),
    ],
)
def test_bad_checkpoints_are_clear_errors(exported, tmp_path, capsys, kind, needle):
    checkpoint, _, _ = exported
    path = {
        "missing": lambda: tmp_path / "nope.pt",
        "truncated": lambda: _truncated(checkpoint, tmp_path / "half.pt"),
        "text": lambda: (tmp_path / "notes.pt").write_text("not a checkpoint") and tmp_path / "notes.pt",
        "foreign": lambda: torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt") or tmp_path / "other.pt",
        "folder": lambda: tmp_path,
    }[kind]()
    assert main([str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "out" / "manifest.json").exists()


@pytest.mark.parametrize("kind, needle", [("file", "is a file"), ("under_a_file", "cannot write to the output folder")])
def test_unusable_output_folders(exported, tmp_path, capsys, kind, needle):
    checkpoint, _, _ = exported
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    out = blocker if kind == "file" else blocker / "sub"
    assert main([str(checkpoint), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_bad_weights_files(exported, tmp_path):
    checkpoint, out, _ = exported
    weights = out / "policy.safetensors"
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        load_policy(_truncated(weights, tmp_path / "half.safetensors"))
    (tmp_path / "junk.bin").write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="not a safetensors weights file"):
        load_policy(tmp_path / "junk.bin")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_policy(tmp_path / "absent.safetensors")
    with pytest.raises(WeightsError, match="not a readable checkpoint"):
        load_policy(_truncated(checkpoint, tmp_path / "half.pt"))


def test_checkpoint_reader_runs_no_pickled_code(tmp_path):
    """A .pt whose pickle calls os.system gets a placeholder, never a shell."""
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            import os

            return os.system, (f"touch {marker}",)

    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"format": "wrestling-arena-agent", "state_dict": Evil()}))
    with pytest.raises(WeightsError, match="non-tensors"):
        load_policy(path)
    assert not marker.exists()
