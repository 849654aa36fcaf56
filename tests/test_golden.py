"""The golden runs (tests/golden_runs.py) give, bit for bit, what they gave before the training
core was reorganised: the same checkpoints (weights, optimizer state, versions, metrics), the
same TensorBoard scalars and replays, the same summary figures and the same run-folder layout."""

import json

import pytest
from golden_runs import GOLDEN_DIR, golden_commands, prepare, run


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    folder = tmp_path_factory.mktemp("golden")
    prepare(folder)
    return folder


def differences(expected, actual, where="") -> list[str]:
    """Where two fingerprints differ; keys the golden file lacks are new figures, allowed in a
    summary only (a new summary key is an addition, not a change)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = [f"{where}/{k}: missing" for k in expected if k not in actual]
        if not where.startswith("/summary"):
            out += [f"{where}/{k}: unexpected" for k in actual if k not in expected]
        for k in expected:
            if k in actual:
                out += differences(expected[k], actual[k], f"{where}/{k}")
        return out
    if expected != actual:
        return [f"{where}: {str(expected)[:160]} != {str(actual)[:160]}"]
    return []


@pytest.mark.parametrize("name", list(golden_commands(GOLDEN_DIR)))
def test_golden_run_is_unchanged(name, work):
    expected = json.loads((GOLDEN_DIR / f"{name}.json").read_text())
    actual = json.loads(json.dumps(run(name, work)))  # tuples -> lists, as stored
    found = differences(expected, actual)
    assert not found, f"{len(found)} differences from tests/golden/{name}.json:\n" + "\n".join(found[:20])
