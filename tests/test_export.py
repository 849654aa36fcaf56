"""python -m policies.export: ONNX and the weights file reproduce torch, for a feed-forward
fighter on single observations and for a recurrent one on match sequences that carry its
memory; the numpy policies and the torch-free checkpoint reader; clear errors for bad
checkpoints, inconsistent weights files, wrong observations and unusable output folders."""

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
from policy_files import (
    FIGHTERS,
    STEPS,
    arena_observations,
    make_checkpoint,
    make_recurrent_checkpoint,
    match_sequences,
    torch_outputs,
    torch_sequences,
)

from policies.export import ExportError, export_checkpoint, main
from policies.numpy_policy import (
    NumpyPolicy,
    NumpyRecurrentPolicy,
    WeightsError,
    load_policy,
    read_weights,
    write_weights,
)
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
    # a feed-forward file stays version 1: readers written before kind lstm still read it
    assert (meta["format_version"], meta["kind"], meta["observation"]) == ("1", "mlp", "basic")
    policy = load_policy(out / "policy.safetensors")
    assert isinstance(policy, NumpyPolicy) and (policy.kind, policy.recurrent, policy.observation) == (
        "mlp",
        False,
        "basic",
    )
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
    assert manifest["observation"]["kind"] == "basic" and len(manifest["observation"]["layout"]) == 4
    assert manifest["network"]["kind"] == "mlp" and manifest["state"] is None
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


# ---------------------------------------------------------------------------- a recurrent fighter


def numpy_sequences(policy, obs: np.ndarray, resets: np.ndarray | None):
    """The same through a NumpyRecurrentPolicy (resets None: never reset after the first step)."""
    state, logits, values = None, [], []
    for t, x in enumerate(obs):
        step_logits, step_values, state = policy.forward(x, state, None if resets is None else resets[t])
        logits.append(step_logits)
        values.append(step_values)
    return np.stack(logits), np.stack(values), state


@pytest.fixture(scope="module")
def recurrent(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("recurrent")
    checkpoint = make_recurrent_checkpoint(tmp / "lstm.pt")
    manifest = export_checkpoint(checkpoint, tmp / "out")
    obs, resets = match_sequences()
    return dict(
        checkpoint=checkpoint,
        out=tmp / "out",
        manifest=manifest,
        obs=obs,
        resets=resets,
        expected=torch_sequences(checkpoint, obs, resets),
    )


def test_recurrent_onnx_numpy_and_torch_agree_on_match_sequences(recurrent):
    obs, resets = recurrent["obs"], recurrent["resets"]
    expected_logits, expected_values, (expected_h, expected_c) = recurrent["expected"]
    assert obs.shape == (STEPS, FIGHTERS, 48) and resets[0].all() and resets[1:].sum() > 100  # matches restarted
    greedy = expected_logits.argmax(-1)

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # as torch's above
    session = onnxruntime.InferenceSession(
        str(recurrent["out"] / "policy.onnx"), options, providers=["CPUExecutionProvider"]
    )
    assert [(i.name, i.shape, i.type) for i in session.get_inputs()] == [
        ("observations", ["batch", 48], "tensor(float)"),
        ("h", ["batch", 128], "tensor(float)"),
        ("c", ["batch", 128], "tensor(float)"),
    ]
    assert [(o.name, o.shape) for o in session.get_outputs()] == [
        ("logits", ["batch", 10]),
        ("value", ["batch"]),
        ("h_out", ["batch", 128]),
        ("c_out", ["batch", 128]),
    ]
    h = c = np.zeros((FIGHTERS, 128), np.float32)  # the documented way: zeros, and a reset zeroes a row
    onnx_logits, onnx_values = [], []
    for x, reset in zip(obs, resets, strict=True):
        h, c = np.where(reset[:, None], 0, h).astype(np.float32), np.where(reset[:, None], 0, c).astype(np.float32)
        step_logits, step_values, h, c = session.run(None, {"observations": x, "h": h, "c": c})
        onnx_logits.append(step_logits)
        onnx_values.append(step_values)
    np.testing.assert_allclose(np.stack(onnx_logits), expected_logits, rtol=0, atol=ATOL)
    np.testing.assert_allclose(np.stack(onnx_values), expected_values, rtol=0, atol=ATOL)
    np.testing.assert_allclose(h, expected_h, rtol=0, atol=ATOL)
    np.testing.assert_allclose(c, expected_c, rtol=0, atol=ATOL)
    np.testing.assert_array_equal(np.stack(onnx_logits).argmax(-1), greedy)
    one = session.run(None, {"observations": obs[0, :1], "h": h[:1], "c": c[:1]})  # the batch axis is dynamic
    assert one[0].shape == (1, 10) and one[2].shape == (1, 128)

    for source in (recurrent["out"] / "policy.safetensors", recurrent["checkpoint"]):
        policy = load_policy(source)
        assert isinstance(policy, NumpyRecurrentPolicy) and (policy.kind, policy.observation) == ("lstm", "full")
        assert policy.metadata == {"fighter_id": 9, "model_version": 2, "global_step": 8192}
        logits, values, (h, c) = numpy_sequences(policy, obs, resets)
        np.testing.assert_allclose(logits, expected_logits, rtol=0, atol=ATOL)
        np.testing.assert_allclose(values, expected_values, rtol=0, atol=ATOL)
        np.testing.assert_allclose(h, expected_h, rtol=0, atol=ATOL)
        np.testing.assert_allclose(c, expected_c, rtol=0, atol=ATOL)
        state, actions = None, []
        for x, reset in zip(obs, resets, strict=True):
            step_actions, state = policy.act(x, state, reset=reset)
            actions.append(step_actions)
        np.testing.assert_array_equal(np.stack(actions), greedy)
    # the memory matters: without the resets at match starts, actions change
    forgetful = numpy_sequences(load_policy(recurrent["checkpoint"]), obs, None)[0].argmax(-1)
    assert (forgetful != greedy).mean() > 0.05


def test_recurrent_manifest_weights_and_onnx_say_kind_observation_and_state(recurrent):
    manifest, out = recurrent["manifest"], recurrent["out"]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    network = manifest["network"]
    assert (network["kind"], network["trunk"], network["core"]) == ("lstm", ["encoder.0"], "lstm")
    assert network["gates"] == "ifgo"
    observation = manifest["observation"]
    assert (observation["kind"], observation["shape"]) == ("full", [48])
    assert len(observation["layout"]) == 7 and observation["layout"][4].startswith("30: own attack cooldown")
    state = manifest["state"]
    assert state["h"] == state["c"] == {"dtype": "float32", "shape": ["batch", 128]} and state["initial"] == "zeros"
    assert "next decision" in state["carry"] and "each match" in state["reset"]
    onnx = manifest["files"]["onnx"]
    assert [i["name"] for i in onnx["inputs"]] == ["observations", "h", "c"]
    assert [o["name"] for o in onnx["outputs"]] == ["logits", "value", "h_out", "c_out"]
    checks = manifest["checks"]
    assert (checks["sequences"], checks["steps"], checks["observations"]) == (16, 16, 256) and checks["resets"] > 0
    assert checks["numpy_max_abs_diff"] < ATOL and checks["onnxruntime_max_abs_diff"] < ATOL
    tensors, meta = read_weights(out / "policy.safetensors")
    assert (meta["format_version"], meta["kind"], meta["observation"]) == ("2", "lstm", "full")
    assert list(tensors)[2:6] == ["lstm.weight_ih", "lstm.weight_hh", "lstm.bias_ih", "lstm.bias_hh"]
    session = onnxruntime.InferenceSession(str(out / "policy.onnx"), providers=["CPUExecutionProvider"])
    properties = session.get_modelmeta().custom_metadata_map
    assert (properties["kind"], properties["observation"], properties["fighter_id"]) == ("lstm", "full", "9")


def test_recurrent_checkpoint_read_without_torch(recurrent):
    obs = recurrent["obs"][:3, :2]
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np\n"
        "from policies.numpy_policy import load_policy\n"
        f"policy, state = load_policy({str(recurrent['checkpoint'])!r}), None\n"
        f"for x in np.array({obs.tolist()!r}, np.float32):\n"
        "    actions, state = policy.act(x, state)\n"
        "    print(*actions)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode == 0, run.stderr
    expected = torch_sequences(recurrent["checkpoint"], obs, np.zeros(obs.shape[:2], bool))[0].argmax(-1)
    assert run.stdout.split() == [str(a) for a in expected.ravel()]


def test_a_full_observation_mlp_exports_and_agrees(tmp_path, recurrent):
    checkpoint = make_recurrent_checkpoint(tmp_path / "mlp.pt", seed=1, kind="mlp")
    manifest = export_checkpoint(checkpoint, tmp_path / "out", onnx=False)
    assert (manifest["network"]["kind"], manifest["observation"]["kind"], manifest["state"]) == ("mlp", "full", None)
    assert len(manifest["observation"]["layout"]) == 7
    _, meta = read_weights(tmp_path / "out" / "policy.safetensors")
    assert (meta["format_version"], meta["kind"], meta["observation"], meta["obs_size"]) == ("1", "mlp", "full", "48")
    obs = recurrent["obs"].reshape(-1, 48)
    expected_logits, expected_values = torch_outputs(checkpoint, obs)
    for source in (tmp_path / "out" / "policy.safetensors", checkpoint):
        policy = load_policy(source)
        assert isinstance(policy, NumpyPolicy) and policy.observation == "full"
        logits, values = policy.forward(obs)
        np.testing.assert_allclose(logits, expected_logits, rtol=0, atol=ATOL)
        np.testing.assert_allclose(values, expected_values, rtol=0, atol=ATOL)
        np.testing.assert_array_equal(policy.act(obs), expected_logits.argmax(1))


def test_wrong_observations_and_states_are_clear_errors(exported, recurrent):
    full = load_policy(recurrent["out"] / "policy.safetensors")
    basic = load_policy(exported[1] / "policy.safetensors")
    with pytest.raises(ValueError, match=r"\(n, 48\), got \(4, 30\) \(this network reads the full observation\)"):
        full.act(np.zeros((4, 30), np.float32))
    with pytest.raises(ValueError, match=r"\(n, 30\), got \(4, 48\) \(this network reads the basic observation\)"):
        basic.act(np.zeros((4, 48), np.float32))
    _, state = full.act(np.zeros((4, 48), np.float32))
    with pytest.raises(ValueError, match=r"two arrays of shape \(3, 128\), one row per observation"):
        full.act(np.zeros((3, 48), np.float32), state)
    with pytest.raises(ValueError, match=r"the \(h, c\) pair"):
        full.forward(np.zeros((4, 48), np.float32), state[0])
    with pytest.raises(ValueError, match=r"reset must be one flag per observation, shape \(4,\)"):
        full.act(np.zeros((4, 48), np.float32), state, reset=np.ones(3, bool))
    with pytest.raises(ValueError, match="rng"):
        full.act(np.zeros((4, 48), np.float32), state, greedy=False)
    sampled, _ = full.act(np.zeros((4, 48), np.float32), state, greedy=False, rng=np.random.default_rng(0))
    assert sampled.shape == (4,) and sampled.dtype == np.int64


def test_the_self_check_runs_sequences_with_resets(recurrent, tmp_path, monkeypatch):
    """A numpy policy that ignored resets would pass a check without them; the export's catches it."""
    forward = NumpyRecurrentPolicy.forward

    def forgetful(self, obs, state=None, reset=None):
        return forward(self, obs, state)

    monkeypatch.setattr(NumpyRecurrentPolicy, "forward", forgetful)
    with pytest.raises(ExportError, match=r"self-check failed: numpy_max_abs_diff .* 16 sequences of 16 .* resets"):
        export_checkpoint(recurrent["checkpoint"], tmp_path / "out", onnx=False)
    assert not (tmp_path / "out" / "manifest.json").exists()


def _rewritten(source: Path, dest: Path, drop=(), **meta_changes) -> Path:
    tensors, meta = read_weights(source)
    for name in drop:
        tensors.pop(name, None)
        meta.pop(name, None)
    write_weights(dest, tensors, {**meta, **meta_changes})
    return dest


@pytest.mark.parametrize(
    "changes, drop, needle",
    [
        ({"format_version": "1"}, (), "inconsistent: a lstm network needs weights format version 2, the file says 1"),
        ({}, ("kind",), "weights format version 2 names its network's kind, this file does not"),
        ({"kind": "gru"}, (), "holds a network of kind 'gru'; this code reads mlp, lstm"),
        ({"format_version": "3"}, (), "has weights format version '3'; this code reads 1 and 2"),
        ({"observation": "basic"}, (), "inconsistent: the basic observation has 30 numbers, its network reads 48"),
        ({"observation": "wide"}, (), "says observation 'wide', which is none of basic, full"),
        ({"hidden_size": "64"}, (), "inconsistent: it says hidden_size 64, its weights have 128"),
        ({"gates": "iofg"}, (), "gates are in the order 'iofg'; this code reads 'ifgo'"),
        ({}, ("lstm.weight_hh",), "the weights lack 'lstm.weight_hh'"),
    ],
)
def test_inconsistent_recurrent_weights_files(recurrent, tmp_path, changes, drop, needle):
    path = _rewritten(recurrent["out"] / "policy.safetensors", tmp_path / "bad.safetensors", drop, **changes)
    with pytest.raises(WeightsError) as error:
        load_policy(path)
    assert needle in str(error.value) and str(path) in str(error.value)


def test_a_weights_file_from_before_kinds_loads_as_a_basic_mlp(exported, tmp_path):
    """Version 1 files written before kind and observation existed lack both keys."""
    path = _rewritten(exported[1] / "policy.safetensors", tmp_path / "old.safetensors", drop=("kind", "observation"))
    assert read_weights(path)[1]["format_version"] == "1" and "kind" not in read_weights(path)[1]
    policy = load_policy(path)
    assert isinstance(policy, NumpyPolicy) and policy.observation == "basic"
    obs = arena_observations(50)
    np.testing.assert_array_equal(policy.act(obs), torch_outputs(exported[0], obs)[0].argmax(1))
