"""Runs the atheris frame fuzzer for a few seconds in a subprocess (skipped without atheris).

The fuzzer runs under ``-rss_limit_mb=1024``: a decoder that let a crafted frame drive an allocation
would blow it (alone the fuzzer peaks at about 60 MB, over millions of inputs). It is started
through :func:`run_fresh`, because Linux carries a process's peak RSS (``getrusage``'s
``ru_maxrss``, which libFuzzer's limit reads) from parent to child across fork and exec: started
directly from a pytest process that a full run has grown past 1 GB, the fuzzer reported that
peak as its own from its first input and was killed for it.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("atheris")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def run_fresh(cmd: list[str], *, check: bool = False, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` as a grandchild, so that its ``ru_maxrss`` counts only its own memory: ``sh``
    inherits this process's peak, but forks before running ``cmd`` (``; exit $?`` keeps it from
    exec-ing it directly), and a forked process starts with its parent's, the small shell's."""
    return subprocess.run(["/bin/sh", "-c", '"$@"; exit $?', "sh", *cmd], check=check, **kwargs)


def test_a_fresh_child_does_not_inherit_this_process_peak_memory() -> None:
    ballast = b"\x01" * (400 << 20)  # written, so resident: this process's peak is now >= 400 MB
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024 >= 400
    code = "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"
    child = run_fresh([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert int(child.stdout) < 200
    del ballast


def test_atheris_frame_fuzzer_finds_no_crash(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    # seed the corpus with valid frames so the fuzzer starts from deep inside the format
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from catopt_dsl.sync.messages import Broadcast, Delta, Envelope, encode_message

    seeds = [
        encode_message(Delta(Envelope(1, 2, 3, 4), {"x": np.arange(3.0)}, {"r": 1.0})),
        encode_message(Broadcast(Envelope(0, 1, 1, 1), {"z": np.ones(2)}, 1.0, (1, 2))),
    ]
    for i, s in enumerate(seeds):
        (corpus / f"seed{i}").write_bytes(b"\x00" + s)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = run_fresh(
        [
            sys.executable,
            str(HERE / "fuzz_frames.py"),
            "-max_total_time=4",
            "-seed=1",
            "-rss_limit_mb=1024",
            "-print_final_stats=1",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done" in proc.stderr and "runs in" in proc.stderr  # it really fuzzed
    # its own peak (the decoders allocate no more than their input): far below the limit
    peak = re.search(r"stat::peak_rss_mb:\s+(\d+)", proc.stderr)
    assert peak is not None and int(peak.group(1)) < 512, proc.stderr[-1000:]
