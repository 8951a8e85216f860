"""Throughput of the Delta frame codec beside a plain numpy copy of the same data.

``run(quick=False)`` encodes and decodes a Delta frame carrying ``n`` float64s (1e3, 1e5, 1e7; quick
mode 1e3, 1e5, 1e6) and compares the median encode+decode time with ``x.tobytes()`` followed by
``np.frombuffer(b).copy()``. Throughput is payload GB/s (n * 8 bytes / seconds). The codec's
target is ``ratio >= 0.5`` (at least half the plain copy's throughput) for large frames.

    python benchmarks/bench_codec.py [--quick]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from catopt_dsl.sync.messages import Delta, Envelope, decode_message, encode_message  # noqa: E402


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (page faults, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(quick: bool = False) -> dict[str, object]:
    """Return ``{"sizes": {n: {...}}}`` with GB/s for the codec, the plain copy, and their ratio."""
    sizes = [10**3, 10**5, 10**6] if quick else [10**3, 10**5, 10**7]
    rng = np.random.default_rng(0)
    results: dict[str, dict[str, float]] = {}
    for n in sizes:
        x = rng.normal(size=n)
        msg = Delta(Envelope(3, 1, 7, 2), {"x:site[3].w": x}, {"primal": 0.5})
        repeats = 5 if n >= 10**6 else 50 if n >= 10**5 else 500

        def codec() -> object:
            out = decode_message(encode_message(msg))
            return out.contributions["x:site[3].w"]

        def codec_copy() -> object:
            # the receiver needs owned, writable arrays (e.g. the buffer is reused)
            out = decode_message(encode_message(msg), copy=True)
            return out.contributions["x:site[3].w"]

        def plain() -> object:
            return np.frombuffer(x.tobytes(), dtype=np.float64).copy()

        got = codec()
        assert np.array_equal(np.asarray(got), x)
        t_codec = _median_time(codec, repeats)
        t_copy = _median_time(codec_copy, repeats)
        t_plain = _median_time(plain, repeats)
        gb = n * 8 / 1e9
        results[str(n)] = {
            "frame_bytes": float(len(encode_message(msg))),
            "codec_gbps": gb / t_codec,
            "codec_copy_gbps": gb / t_copy,
            "plain_gbps": gb / t_plain,
            "ratio": t_plain / t_codec,
            "ratio_copy": t_plain / t_copy,
        }
    return {"quick": quick, "sizes": results}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
