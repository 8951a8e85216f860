"""Checkpoints: atomic writes, resume to the same optimum, and a real `kill -9` of a solving process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner

from catopt_dsl.cli import main
from catopt_dsl.compile import load_plan
from catopt_dsl.ir.model import IRPlan
from catopt_dsl.solver import SolveOptions
from catopt_dsl.sync.checkpoint import (
    Checkpoint,
    CheckpointError,
    read_checkpoint,
    write_checkpoint,
)
from catopt_dsl.sync.run import DistributedSolve
from catopt_dsl.sync.transport import FaultPlan

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@cache
def plan_of(name: str) -> IRPlan:
    return load_plan(EXAMPLES / f"{name}.cat")


@pytest.mark.parametrize("name", ["gpu_fleet", "consensus_lasso"])
def test_resume_continues_the_same_iterates(tmp_path: Path, name: str) -> None:
    plan = plan_of(name)
    full = DistributedSolve(plan).run()
    cp_file = tmp_path / "run.ckpt"
    stop = (full.iterations or 0) // 2
    part = DistributedSolve(plan, SolveOptions(max_iter=stop), checkpoint=cp_file, checkpoint_every=5)
    assert part.run().status == "max_iterations"
    cp = read_checkpoint(cp_file)
    assert cp.iteration == stop - stop % 5 and part.checkpoints_written == stop // 5
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind
    resumed = DistributedSolve(plan, resume=cp)
    got = resumed.run()
    assert got.status == "optimal" and got.iterations == full.iterations
    assert got.objective is not None and full.objective is not None
    assert abs(got.objective - full.objective) <= 1e-9 * max(1.0, abs(full.objective))
    # the resumed coordinator's epochs and incarnations go on from the checkpoint's: nothing the
    # interrupted run's processes send can be applied
    assert resumed.trace.epoch > cp.epoch
    assert all(resumed.trace.incarnations[n] > cp.incarnations[n] for n in cp.incarnations)


def test_a_checkpoint_during_a_membership_change_resumes_to_the_whole_plan(tmp_path: Path) -> None:
    plan = plan_of("gpu_fleet")
    cp_file = tmp_path / "run.ckpt"
    # tenant_b crashed and was dropped before the checkpoint: the resumed run starts every node again
    run = DistributedSolve(plan, SolveOptions(max_iter=40), faults=FaultPlan(crash_at={2: 5}),
                           checkpoint=cp_file, checkpoint_every=10)
    run.run()
    cp = read_checkpoint(cp_file)
    assert cp.missing == {"tenant_b": "dropped"}
    got = DistributedSolve(plan, resume=cp).run()
    full = DistributedSolve(plan).run()
    assert got.status == "optimal" and got.objective is not None and full.objective is not None
    assert abs(got.objective - full.objective) <= 1e-5 * abs(full.objective)


def test_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_of("gpu_fleet")
    cp_file = tmp_path / "run.ckpt"
    DistributedSolve(plan, SolveOptions(max_iter=10), checkpoint=cp_file, checkpoint_every=5).run()
    before = cp_file.read_bytes()
    newer = read_checkpoint(cp_file)
    newer = Checkpoint(newer.spec_hash, newer.plan, newer.iteration + 1, newer.state)

    def crash(*_a: object) -> None:
        raise OSError("disk gone at the worst moment")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_checkpoint(cp_file, newer)
    assert cp_file.read_bytes() == before  # the old checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["run.ckpt"]  # and no temporary file is left


def test_bad_checkpoints_are_one_line_errors(tmp_path: Path) -> None:
    cp_file = tmp_path / "run.ckpt"
    DistributedSolve(plan_of("gpu_fleet"), SolveOptions(max_iter=10), checkpoint=cp_file, checkpoint_every=10).run()
    with pytest.raises(CheckpointError, match="another plan"):
        DistributedSolve(plan_of("plan_deltas"), resume=read_checkpoint(cp_file))
    for text, why in (("{", "invalid JSON"), ('{"format": "x"}', "not a catoptc checkpoint"),
                      (cp_file.read_text().replace('"rho": ', '"rho": -'), "rho")):
        bad = tmp_path / "bad.ckpt"
        bad.write_text(text)
        with pytest.raises(CheckpointError, match=why):
            read_checkpoint(bad)
    # the CLI: a checkpoint of another plan is a usage error, a file that is not one is never overwritten
    other = tmp_path / "notes.txt"
    other.write_text("my notes")
    res = CliRunner().invoke(main, ["solve", str(EXAMPLES / "plan_deltas.cat"), "--backend", "distributed",
                                    "--resume", str(cp_file)])
    assert res.exit_code == 2 and "another plan" in res.output
    res = CliRunner().invoke(main, ["solve", str(EXAMPLES / "gpu_fleet.cat"), "--backend", "distributed",
                                    "--checkpoint", str(other)])
    assert res.exit_code == 2 and "refusing to overwrite" in res.output and other.read_text() == "my notes"
    res = CliRunner().invoke(main, ["solve", str(EXAMPLES / "gpu_fleet.cat"), "--checkpoint", str(cp_file)])
    assert res.exit_code == 2 and "--backend distributed" in res.output


def _solve_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "catopt_dsl", "solve", str(EXAMPLES / "federated_logreg.cat"),
            "--backend", "distributed", "--json", "--quiet", *args]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


@pytest.mark.slow
def test_resume_after_kill_9_of_the_solving_process(tmp_path: Path) -> None:
    """The solving process is SIGKILLed mid-run; `solve --resume` reaches the same optimum with no
    more than 10% extra iterations (counting every iteration the killed process ran past its last
    checkpoint as extra)."""
    every = 2
    cp_file = tmp_path / "run.ckpt"
    proc = subprocess.Popen(_solve_cmd("--checkpoint", str(cp_file), "--every", str(every)), env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    seen = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                seen = read_checkpoint(cp_file).iteration
            except CheckpointError:
                seen = 0
            if seen >= 16:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the solve finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)  # a real kill -9: no cleanup, no last checkpoint
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and seen >= 16
    cp = read_checkpoint(cp_file)  # the newest one the killed process wrote, whole
    assert cp.iteration >= seen and not list(tmp_path.glob(".*tmp*"))
    resumed = subprocess.run(_solve_cmd("--resume", str(cp_file), "--checkpoint", str(cp_file)), env=_env(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    got = json.loads(resumed.stdout)
    ref = DistributedSolve(plan_of("federated_logreg")).run()
    assert got["status"] == "optimal" and ref.objective is not None
    assert abs(got["objective"] - ref.objective) <= 1e-5 * max(1.0, abs(ref.objective))
    n = ref.iterations or 0
    # the killed process ran at most every - 1 iterations past the checkpoint it left
    work = got["iterations"] + (every - 1)
    assert work <= 1.1 * n, (got["iterations"], n)
    assert got["membership"]["epoch"] > cp.epoch
