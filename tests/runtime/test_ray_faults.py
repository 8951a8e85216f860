"""Ray as an operator meets it: start-up retried, stale folders of killed drivers removed, a cluster
that refuses us is a user error, and stdout stays one JSON document while actors die."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")

from catopt_dsl.runtime.backends import ClusterConnectionError
from catopt_dsl.runtime.ray_backend import _PID_FILE, _start_local, clean_stale_sessions

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_AUTH_TOKEN", None)
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    env.update(extra)
    return env


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_folders_of_dead_drivers_are_removed(tmp_path: Path) -> None:
    stale = tmp_path / "catray-stale"
    stale.mkdir()
    (stale / _PID_FILE).write_text(f"{_dead_pid()}\n")
    (stale / "auth_token").write_text("secret")
    live = tmp_path / "catray-live"
    live.mkdir()
    (live / _PID_FILE).write_text(f"{os.getpid()}\n")  # this process: alive
    foreign = tmp_path / "catray-foreign"
    foreign.mkdir()  # no pid file: not ours to judge
    other = tmp_path / "unrelated"
    other.mkdir()
    (other / _PID_FILE).write_text(f"{_dead_pid()}\n")
    assert clean_stale_sessions(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and foreign.exists() and other.exists()


class _FlakyRay:
    """Stands in for the ray module: the first init fails as Ray's start-up deadline does."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.folders: list[str] = []
        self.up = False

    def init(self, **kwargs: Any) -> None:
        self.folders.append(kwargs["_temp_dir"])
        if self.failures:
            self.failures -= 1
            raise Exception("The current node timed out during startup.")
        self.up = True

    def is_initialized(self) -> bool:
        return self.up

    def shutdown(self) -> None:
        self.up = False


def test_a_local_start_is_retried_once_in_a_fresh_folder() -> None:
    phases: list[str] = []
    ray = _FlakyRay(failures=1)
    folder = _start_local(ray, 2, own_token=False, phase=phases.append)
    try:
        assert ray.up and len(ray.folders) == 2 and ray.folders[1] == str(folder)
        assert not Path(ray.folders[0]).exists()  # the failed attempt's folder is gone
        assert (folder / _PID_FILE).read_text().strip() == str(os.getpid())
        assert any("retrying once" in p for p in phases)
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    with pytest.raises(ClusterConnectionError, match="did not start \\(twice\\)"):
        _start_local(_FlakyRay(failures=2), 2, own_token=False, phase=None)


SESSION = r"""
import sys, time
from catopt_dsl.runtime.ray_backend import ray_session
with ray_session(num_cpus=1) as ray:
    ctx = ray.get_runtime_context()
    print(ctx.gcs_address, ray._private.worker.global_worker.node.get_session_dir_path(), flush=True)
    time.sleep(600)
"""


@pytest.mark.slow
def test_after_a_sigkilled_driver_its_folder_goes_and_an_unauthenticated_join_is_a_user_error(tmp_path: Path) -> None:
    """A driver with a local Ray is SIGKILLed: its daemons die with it and the next start removes
    its folder (auth token included). Before that, joining its cluster without the token is a
    one-line user error (exit 2), not an internal error."""
    proc = subprocess.Popen([sys.executable, "-c", SESSION], env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert len(line) == 2, "the Ray session did not start"
        gcs, session_dir = line
        folder = next(p for p in [Path(session_dir), *Path(session_dir).parents] if p.name.startswith("catray-"))
        assert (folder / "auth_token").exists()
        t0 = time.monotonic()
        joined = subprocess.run(
            [sys.executable, "-m", "catopt_dsl", "solve", str(ROOT / "examples" / "gpu_fleet.cat"), "--backend",
             "ray", "--address", gcs, "--json"],
            env=_env(HOME=str(tmp_path)), capture_output=True, text=True, timeout=120,
        )
        assert time.monotonic() - t0 < 60
        assert joined.returncode == 2, joined.stderr[-2000:]
        assert "cannot join the Ray cluster" in joined.stderr and "internal error" not in joined.stderr
        assert joined.stdout == ""
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and folder.exists():
        clean_stale_sessions(folder.parent)
        time.sleep(1)
    assert not folder.exists()


@pytest.mark.slow
def test_stdout_is_one_json_document_while_an_actor_hangs_and_is_replaced() -> None:
    """The CLI on Ray with a hung actor: Ray prints `(raylet)` lines about the killed worker; they
    go to stderr, stdout holds exactly the JSON result, and each fallback warning is printed once."""
    res = subprocess.run(
        [sys.executable, "-m", "catopt_dsl", "solve", str(ROOT / "examples" / "gpu_fleet.cat"), "--backend", "ray",
         "--json", "--fault", "hang=tenant_b@10", "--node-timeout", "3"],
        env=_env(), capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads(res.stdout)  # the whole of stdout is one JSON document
    assert doc["status"] == "optimal" and doc["membership"]["incarnations"]["2"] == 2
    assert res.stdout.count("\n") == 1
    for name in ("tenant_a", "tenant_b", "tenant_c"):
        assert res.stderr.count(f"object(s) {name} declared") == 1, res.stderr[-3000:]
