"""web/policy.js in real headless chromium agrees with the Python policy.

An exported checkpoint and 10,000 stored observations from real matches are served beside
web/policy.js and web/policy-test.html; the page's greedy actions must equal torch's for
every observation, its logits torch's within 1e-5, and its seeded samples must follow the
policy's distribution. Chromium is Debian's package (.ci/run installs it); without it
this test fails rather than skips.
"""

import queue
from pathlib import Path

import numpy as np
from policy_files import arena_observations, make_checkpoint, torch_outputs
from test_ingest_browser import find_chromium

from demos.browser import headless_chromium
from demos.clone_chaser import ReportSite
from policies.export import export_checkpoint

ROOT = Path(__file__).resolve().parent.parent
OBSERVATIONS = 10_000
SAMPLES = 20_000
"""Seeded draws the page makes for one observation (policy-test.html's SAMPLES)."""


def test_browser_policy_agrees_with_python(tmp_path):
    chromium = find_chromium()
    checkpoint = make_checkpoint(tmp_path / "step.pt", seed=2, fighter_id=5, model_version=4, global_step=123_456)
    site = tmp_path / "site"
    site.mkdir()
    export_checkpoint(checkpoint, site / "export", onnx=False)
    for name in ("policy.js", "policy-test.html"):
        (site / name).symlink_to(ROOT / "web" / name)  # the shipped files themselves
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

    server = ReportSite(site)
    try:
        with headless_chromium(chromium, f"{server.url}/policy-test.html?row={row}"):
            report = server.reports.get(timeout=90)
    except queue.Empty:
        raise AssertionError("the page reported nothing within 90 s") from None
    finally:
        server.close()

    assert report["ok"], report.get("error")
    assert report["info"] == {"fighterId": 5, "modelVersion": 4, "globalStep": 123_456, "obsSize": 30, "numActions": 10}
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
    assert "observations[1] has 29 numbers" in errors["shortNestedRow"]["message"]
    assert "must be finite" in errors["notFinite"]["message"]
    assert "needs an rng" in errors["noRng"]["message"]
    assert "truncated" in errors["truncated"]["message"]
    assert "not a safetensors weights file" in errors["notWeights"]["message"]
    assert "404" in errors["missing"]["message"]
    print(f"policy.js: {OBSERVATIONS} greedy actions in {report['greedyMs']:.1f} ms in chromium")
