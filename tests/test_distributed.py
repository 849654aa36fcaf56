"""Training across processes with torchrun (gloo on the CPU): two ranks train what one process
trains on the same global batch, only rank 0 writes, a distributed run resumes with the same or
another number of ranks, and the ranks leave together on Ctrl-C or when one of them dies."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import torch
from golden_runs import ROOT

from configs import CONFIG_DIR
from policies import read_checkpoint
from train import train
from training import shared_reduce

SMALL = ["--env.num_arenas", "32", "--train.num_steps", "16", "--torch_threads", "1", "--seed", "3"]
AGGRESSION = [str(CONFIG_DIR / "chaser-duel.yaml"), *SMALL, "--eval.matches", "8"]


def torchrun(*args, ranks: int = 2, **popen):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks),
               str(ROOT / "train.py"), *args]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if popen:
        return subprocess.Popen(command, cwd=ROOT, env=env, text=True, **popen)
    return subprocess.run(command, cwd=ROOT, env=env, text=True, capture_output=True, timeout=300)


def train_py(*args):
    """``python train.py ARGS``, as a user types it."""
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, text=True, capture_output=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)  # fmt: skip


SHARED = shared_reduce.supported() is None
"""this machine sums the ranks' gradients through shared memory by default (all_reduce: auto)"""


@pytest.mark.parametrize(
    "extra",
    [
        ["--processes", "2"],
        ["--all_reduce", "backend"],
        ["--train.symmetry_coef", "1", "--env.observation", "full"],
        ["--policy.kind", "lstm"],
        ["--policy.kind", "lstm", "--all_reduce", "backend"],
    ],
    ids=["ppo_processes", "ppo_gloo", "symmetry_loss", "lstm", "lstm_gloo"],
)
def test_two_ranks_train_what_one_process_trains(tmp_path, extra):
    budget = ["--train.total_timesteps", "2500", "--eval.interval", "2"]
    if extra == ["--processes", "2"]:  # python train.py starts the two ranks itself (config key processes)
        result = train_py(*AGGRESSION, *budget, *extra, "--run-dir", str(tmp_path / "two"))
        assert result.stdout.count("Finished:") == 1, result.stdout  # rank 0's summary, printed once
        extra = []
    else:
        budget += extra
        result = torchrun(*AGGRESSION, *budget, "--run-dir", str(tmp_path / "two"))
    assert result.returncode == 0, result.stderr[-3000:]
    one = train(AGGRESSION[0], AGGRESSION[1:] + budget, run_dir=tmp_path / "one", progress=False)
    two = json.loads((tmp_path / "two" / "summary.json").read_text())
    summed = "shared_memory" if SHARED and "backend" not in extra else "gloo"
    assert two["distributed"] == {"world_size": 2, "backend": "gloo", "all_reduce": summed, "parameters_in_sync": True}
    assert (two["global_step"], two["iterations"], two["episodes"]) == (one["global_step"], one["iterations"],
                                                                        one["episodes"])  # fmt: skip
    a = read_checkpoint(tmp_path / "one" / "checkpoints" / "latest.pt")["state_dict"]
    b = read_checkpoint(tmp_path / "two" / "checkpoints" / "latest.pt")["state_dict"]
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    # Rank 0 alone wrote: the same files as one process, one TensorBoard file.
    files = {p.relative_to(tmp_path / "two").as_posix() for p in (tmp_path / "two").rglob("*") if p.is_file()}
    assert {f for f in files if not f.startswith("events.")} == {
        p.relative_to(tmp_path / "one").as_posix() for p in (tmp_path / "one").rglob("*")
        if p.is_file() and not p.name.startswith("events.")}  # fmt: skip
    assert len([f for f in files if f.startswith("events.")]) == 1


def test_a_distributed_league_resumes_with_the_same_and_another_number_of_ranks(tmp_path):
    league = [str(CONFIG_DIR / "selfplay.yaml"), *SMALL, "--train.total_timesteps", "4000", "--eval.interval", "0",
              "--league.snapshot_interval", "700", "--league.specialists", "[]", "--league.init_from", "null",
              "--league.fixed", "0", "--league.bots", "0.68", "--league.rating_interval", "1"]  # fmt: skip
    run = tmp_path / "run"
    first = torchrun(*league, "--run-dir", str(run), "--stop-at", "1500")
    assert first.returncode == 0, first.stderr[-3000:]
    step = read_checkpoint(run / "checkpoints" / "latest.pt")["global_step"]
    second = torchrun("--resume", str(run), "--stop-at", "2500")  # the same two ranks
    assert second.returncode == 0, second.stderr[-3000:]
    assert read_checkpoint(run / "checkpoints" / "latest.pt")["global_step"] > step
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    third = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--resume", str(run)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )  # one process finishes the run
    assert third.returncode == 0, third.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["global_step"] >= 4000 and "distributed" not in summary
    snapshots = sorted(p.name for p in (run / "league").glob("snapshot_*.pt"))
    assert len(snapshots) == summary["league"]["snapshots"] >= 4  # each written once, by rank 0
    assert "start fresh matches" in second.stdout + third.stdout


def workers_of(launcher: subprocess.Popen) -> dict[int, psutil.Process]:
    """rank -> the training process torchrun started."""
    out = {}
    for child in psutil.Process(launcher.pid).children(recursive=True):
        try:
            rank = child.environ().get("RANK")
        except psutil.Error:
            continue
        if rank is not None and "train.py" in " ".join(child.cmdline()):
            out[int(rank)] = child
    return out


def wait_for_progress(launcher: subprocess.Popen, lines: int = 3) -> None:
    seen = 0
    while seen < lines:
        line = launcher.stdout.readline()
        assert line, "torchrun ended before training got under way"
        seen += line.startswith("step")


LONG = [*AGGRESSION, "--train.total_timesteps", "100000000", "--eval.interval", "0", "--log_interval", "0.2"]


@pytest.mark.parametrize("how", ["ctrl-c", "kill rank 1"])
def test_the_ranks_leave_together_within_seconds_and_rank_0_saves(tmp_path, how):
    run = tmp_path / "run"
    launcher = torchrun(*LONG, "--run-dir", str(run), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        start_new_session=True)  # fmt: skip
    try:
        wait_for_progress(launcher)
        workers = workers_of(launcher)
        assert set(workers) == {0, 1}
        t0 = time.monotonic()
        if how == "ctrl-c":  # a terminal's Ctrl-C reaches torchrun and its workers
            os.killpg(launcher.pid, signal.SIGINT)
        else:
            workers[1].kill()
        out, err = launcher.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        launcher.kill()
    assert took < 20, f"the run took {took:.1f} s to stop"
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers.values())
    saved = read_checkpoint(run / "checkpoints" / "latest.pt")
    assert saved["global_step"] > 0
    if how == "ctrl-c":
        summary = json.loads((run / "summary.json").read_text())
        assert summary["interrupted"] and summary["global_step"] == saved["global_step"]
        assert summary["distributed"]["parameters_in_sync"]
        assert "Stopped" in out and "resume with" in out
    else:
        assert "another process of the run failed or left" in err


def test_sampling_a_share_of_the_rows_draws_what_the_whole_batch_draws():
    from policies.network import sample_actions

    logprobs = torch.log_softmax(torch.randn(12, 10), -1)
    whole = sample_actions(logprobs, torch.Generator().manual_seed(4))
    parts = [sample_actions(logprobs[k : k + 4], torch.Generator().manual_seed(4), rows=(k, 12)) for k in (0, 4, 8)]
    assert torch.equal(torch.cat(parts), whole)


def test_the_scaling_benchmark_reports_every_mode(tmp_path):
    from training.bench_scaling import MODES, main

    out = tmp_path / "scaling.json"
    assert main(["--rounds", "1", "--steps", "2", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["minibatch_rows"] == 8192  # configs/chaser-duel.yaml: 64 steps x 1024 learners / 8
    (round_,) = figures["rounds"]
    assert all(len(round_[m]) == 2 and min(round_[m]) > 0 for m in MODES)  # each rank's ms per step
    assert figures["median"]["ceiling"] > 0


def test_processes_refusals_name_the_problem_without_a_traceback(tmp_path):
    """A rank's refusal (arenas that do not split, a missing --init-from checkpoint) comes back as
    train.py's own error line, status 2, and leaves no run folder."""
    uneven = train_py(*AGGRESSION, "--processes", "2", "--env.num_arenas", "33", "--run-dir", str(tmp_path / "a"))
    assert uneven.returncode == 2 and "Traceback" not in uneven.stderr
    assert "env.num_arenas is 33, which does not split evenly between 2 processes" in uneven.stderr
    missing = tmp_path / "missing.pt"
    refused = train_py(*AGGRESSION, "--processes", "2", "--init-from", str(missing), "--run-dir", str(tmp_path / "b"))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    assert refused.stderr.startswith("error: ") and str(missing) in refused.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
