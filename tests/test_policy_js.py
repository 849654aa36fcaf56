"""web/policy.js in real headless chromium agrees with the Python policy.

An exported checkpoint and 10,000 stored observations from real matches are served beside
web/policy.js and web/policy-test.html; the page's greedy actions must equal torch's for
every observation, its logits torch's within 1e-5, and its seeded samples must follow the
policy's distribution. A recurrent checkpoint reading the full observation plays 100 fighters
through 100 decisions, each fighter's memory carried from decision to decision and reset at
its match starts, and must do the same. Chromium is Debian's package (.ci/run installs it);
without it these tests fail rather than skip.
"""

from pathlib import Path

import numpy as np
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
from test_ingest_browser import find_chromium

from demos import browser
from policies.export import export_checkpoint
from policies.numpy_policy import read_weights, write_weights

ROOT = Path(__file__).resolve().parent.parent
OBSERVATIONS = 10_000
SAMPLES = 20_000
"""Seeded draws the page makes for one observation (policy-test.html's SAMPLES)."""


def serve_site(tmp_path: Path, checkpoint: Path) -> Path:
    """A folder with the checkpoint's export, web/policy.js and web/policy-test.html."""
    site = tmp_path / "site"
    site.mkdir()
    export_checkpoint(checkpoint, site / "export", onnx=False)
    for name in ("policy.js", "policy-test.html"):
        (site / name).symlink_to(ROOT / "web" / name)  # the shipped files themselves
    return site


def page_report(site: Path, query: str) -> dict:
    """Run policy-test.html in headless chromium and return what it reported."""
    report = browser.page_report(find_chromium(), site, f"policy-test.html?{query}", 90)
    assert report["ok"], report.get("error")
    return report


def test_browser_policy_agrees_with_python(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "step.pt", seed=2, fighter_id=5, model_version=4, global_step=123_456)
    site = serve_site(tmp_path, checkpoint)
    obs = np.concatenate(
        [
            arena_observations(OBSERVATIONS - 2000),
            np.random.default_rng(2).normal(0.0, 1.0, (2000, 30)).astype(np.float32),
        ]
    )
    (site / "observations.bin").write_bytes(obs.astype("<f4").tobytes())
    logits, values = torch_outputs(checkpoint, obs)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    row = int(np.argmax(-(probs * np.log(probs)).sum(1)[:1000]))  # a spread-out distribution to sample

    report = page_report(site, f"row={row}")
    assert report["info"] == {
        "kind": "mlp",
        "recurrent": False,
        "observation": "basic",
        "fighterId": 5,
        "modelVersion": 4,
        "globalStep": 123_456,
        "obsSize": 30,
        "numActions": 10,
        "hiddenSize": None,
    }
    js_actions = np.array(report["greedy"])
    python_actions = logits.argmax(1)
    assert len(js_actions) == OBSERVATIONS
    disagree = np.flatnonzero(js_actions != python_actions)
    assert disagree.size == 0, f"{disagree.size} of {OBSERVATIONS} disagree, first rows {disagree[:10]}"
    np.testing.assert_allclose(np.reshape(report["logits"], (200, 10)), logits[:200], rtol=0, atol=1e-5)
    np.testing.assert_allclose(report["values"], values[:200], rtol=0, atol=1e-5)
    assert report["nested"] == python_actions[:50].tolist() and report["one"] == python_actions[0]

    frequencies = np.array(report["counts"]) / SAMPLES
    np.testing.assert_allclose(frequencies, probs[row], atol=0.015)
    assert report["seven"] == report["sevenAgain"] and report["seven"] != report["eight"]

    errors = report["errors"]
    assert all(e is not None and e["isPolicyError"] for e in errors.values()), errors
    assert "not a whole number of observations" in errors["partialRow"]["message"]
    assert (
        "observations[1] has 29 numbers; each row has 30 numbers (the basic observation)"
        in (errors["shortNestedRow"]["message"])
    )
    assert (
        "an observation has 30 numbers (the basic observation) for this policy, got 48"
        in (errors["fullObservation"]["message"])
    )
    assert "feed-forward (kind mlp) and keeps no state" in errors["state"]["message"]
    assert "must be finite" in errors["notFinite"]["message"]
    assert "needs an rng" in errors["noRng"]["message"]
    assert "truncated" in errors["truncated"]["message"]
    assert "not a safetensors weights file" in errors["notWeights"]["message"]
    assert "404" in errors["missing"]["message"]
    print(f"policy.js: {OBSERVATIONS} greedy actions in {report['greedyMs']:.1f} ms in chromium")


CHECKED_STEPS = 10
"""Steps of the recurrent run whose logits and values the page reports (all 10,000 actions are)."""


def bad_weights(source: Path, folder: Path) -> None:
    """Inconsistent variants of an lstm weights file, for the page to refuse."""
    folder.mkdir()
    tensors, meta = read_weights(source)
    variants = {
        "version-1": {"format_version": "1"},
        "no-kind": {"kind": None},
        "gru": {"kind": "gru"},
        "basic-48": {"observation": "basic"},
        "gates": {"gates": "iofg"},
    }
    for name, changes in variants.items():
        changed = {k: v for k, v in {**meta, **changes}.items() if v is not None}
        write_weights(folder / f"{name}.safetensors", tensors, changed)


def test_browser_recurrent_policy_agrees_with_python_on_match_sequences(tmp_path):
    checkpoint = make_recurrent_checkpoint(tmp_path / "lstm.pt", seed=3)
    site = serve_site(tmp_path, checkpoint)
    bad_weights(site / "export" / "policy.safetensors", site / "bad")
    obs, resets = match_sequences(seed=5)
    (site / "observations.bin").write_bytes(obs.astype("<f4").tobytes())
    (site / "resets.bin").write_bytes(resets.astype(np.uint8).tobytes())
    logits, values, _ = torch_sequences(checkpoint, obs, resets)
    python_actions = logits.argmax(-1)

    report = page_report(site, f"mode=recurrent&fighters={FIGHTERS}&checked={CHECKED_STEPS}")
    assert report["info"] == {
        "kind": "lstm",
        "recurrent": True,
        "observation": "full",
        "fighterId": 9,
        "modelVersion": 2,
        "globalStep": 8192,
        "obsSize": 48,
        "numActions": 10,
        "hiddenSize": 128,
    }
    js_actions = np.reshape(report["greedy"], (STEPS, FIGHTERS))
    disagree = np.argwhere(js_actions != python_actions)
    assert disagree.size == 0, f"{len(disagree)} of {STEPS * FIGHTERS} disagree, first (step, fighter) {disagree[:10]}"
    np.testing.assert_allclose(
        np.reshape(report["logits"], (CHECKED_STEPS, FIGHTERS, 10)), logits[:CHECKED_STEPS], rtol=0, atol=1e-5
    )
    np.testing.assert_allclose(
        np.reshape(report["values"], (CHECKED_STEPS, FIGHTERS)), values[:CHECKED_STEPS], rtol=0, atol=1e-5
    )
    one_by_one = np.array(report["oneByOne"])  # fighters 0-3 with a state each, over the first 40 steps
    assert resets[1:40, :4].any(0).all()  # each of them started a new match on the way
    np.testing.assert_array_equal(one_by_one, python_actions[: one_by_one.shape[1], :4].T)

    errors = report["errors"]
    assert all(e is not None and e["isPolicyError"] for e in errors.values()), errors
    expected = {
        "basicObservation": "an observation has 48 numbers (the full observation) for this policy, got 30",
        "partialRow": "30 numbers is not a whole number of observations of 48 numbers (the full observation)",
        "noState": "recurrent (kind lstm) and needs its memory: pass { state }, made by policy.createState(n)",
        "stateRows": "the state holds 2 fighters, but 3 observations of 48 numbers (the full observation) came",
        "foreignState": "does not fit this policy's 128 hidden units",
        "resetRow": "row 2 is not one of the state's 2 fighters",
        "versionOne": "version-1 is inconsistent: a lstm network needs format version 2, the file says 1",
        "noKind": "no-kind: format version 2 names its network's kind, this file does not",
        "unknownKind": "gru holds a network of kind gru; this module reads mlp, lstm",
        "observationSize": "basic-48 is inconsistent: the basic observation has 30 numbers, its network reads 48",
        "gates": "gates: the LSTM gates are in the order iofg; this module reads ifgo",
    }
    for name, needle in expected.items():
        assert needle in errors[name]["message"], (name, errors[name]["message"])
    print(f"policy.js: {STEPS * FIGHTERS} recurrent greedy actions in {report['greedyMs']:.1f} ms in chromium")
