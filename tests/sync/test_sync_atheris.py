"""Runs the atheris frame fuzzer for a few seconds in a subprocess (skipped without atheris)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


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
    # libFuzzer's RSS is the process's peak RSS, which Linux carries over from the forked parent
    # (this pytest process, 1 GB and more late in the full suite): allow 1 GiB above it.
    import resource

    parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    proc = subprocess.run(
        [
            sys.executable,
            str(HERE / "fuzz_frames.py"),
            "-max_total_time=4",
            "-seed=1",
            f"-rss_limit_mb={parent_mb + 1024}",
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
