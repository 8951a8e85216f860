"""Start ``catoptc registry serve`` as a real process on a free localhost port, and stop it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"serving .* on (http://127\.0\.0\.1:(\d+))")


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = str(ROOT) + (os.pathsep + out["PYTHONPATH"] if out.get("PYTHONPATH") else "")
    out.pop("CATOPT_REGISTRY", None)
    return out


@contextmanager
def running_server(target: str, *extra: str) -> Iterator[str]:
    """Yields the base URL; the server is stopped (SIGINT, then SIGKILL) when the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "catopt_dsl", "registry", "serve", "--registry", target, "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = _LISTENING.search(line)
        if m is None:
            proc.kill()
            raise RuntimeError(f"server did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
        url = m.group(1)
        _wait_until_up(url)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


def _wait_until_up(url: str, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url + "/", timeout=2.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
