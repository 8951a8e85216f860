"""The governance ledger and signed frames: append and verify throughput, signing cost per ADMM round.

* **Append**: a fresh ledger of ``n`` signed entries (100,000; ``--quick`` 2,000), each a
  ``solve.recorded``-sized body, written in group commits of 100 entries per ``fsync``
  (``append_many``: every entry is durable when the call returns). Target: over 2,000 durable
  signed entries/s. Beside it: appends with one ``fsync`` each (on a time budget), which the
  disk's fsync latency bounds (measured in the same run), and the CPU cost of an append alone.
* **Verify**: open the per-entry ledger and re-check every record checksum, canonical entry,
  signature, ``prev_root`` and the tree. Target: 100,000 entries in under a minute.
* **Proofs**: median time of an inclusion proof and of a consistency proof on that ledger.
* **Signing vs an ADMM round** on ``examples/sites_200.cat`` (200 sites in 32 nodes): the same
  distributed run with and without :class:`~catopt_dsl.sync.auth.RunAuth`, with every Ed25519
  signature and verification timed. Target: the signatures made in one round cost under 10% of
  an unsigned round. Verification is reported beside it: in this one-process run every node's
  verification is serialised, in a deployment each node verifies on its own machine.

    python benchmarks/bench_ledger.py [--quick]

``run(quick=False) -> dict`` with ``tables``, ``targets``, ``notes`` (the harness's shape) and the
raw numbers under ``raw``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from catopt_dsl.identity import Identity, Owners
from catopt_dsl.identity import keys as keys_module
from catopt_dsl.ledger import Ledger

SITES = Path(__file__).resolve().parents[1] / "examples" / "sites_200.cat"


def _body(i: int) -> dict[str, Any]:
    """About the size of a solve record for a small plan."""
    return {
        "spec": {"path": "examples/gpu_fleet.cat", "spec_hash": f"{i:064x}"},
        "data": {f"tenant_{c}": f"{(i * 7 + ord(c)):064x}" for c in "abcd"},
        "status": "optimal",
        "objective": repr(-94.2 - i * 1e-6),
        "result": {"alg": "catopt-result-v1", "sha256": f"{i * 13:064x}"},
    }


def _fsync_ms(folder: Path, count: int = 50) -> float:
    """Median latency of writing 1 KiB and fsyncing it, on the ledger's disk (what bounds durable appends)."""
    path = folder / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    times = []
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            os.write(fd, bytes(1024))
            os.fsync(fd)
            times.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(times) * 1e3


def _ledger_numbers(n: int, folder: Path, single_budget_s: float) -> dict[str, float]:
    me = Identity.from_seed(bytes([5]) * 32)
    fsync_ms = _fsync_ms(folder)

    # The n-entry ledger, written in group commits: each batch is durable when append_many returns.
    batched = Ledger.open(folder / "ledger.catl", create=True)
    t0 = time.perf_counter()
    for start in range(0, n, 100):
        batched.append_many(me, [("solve.recorded", _body(i), None) for i in range(start, min(n, start + 100))])
    t_batch = time.perf_counter() - t0

    # One fsync per entry, on a time budget (the disk's fsync latency bounds it).
    single = Ledger.open(folder / "single.catl", create=True)
    t0 = time.perf_counter()
    count = 0
    while count < n and (count < 200 or time.perf_counter() - t0 < single_budget_s):
        single.append(me, "solve.recorded", _body(count))
        count += 1
    t_single = time.perf_counter() - t0

    # CPU cost of an append without the disk: build, sign, hash into the tree.
    from catopt_dsl.ledger.entry import Entry
    from catopt_dsl.ledger.merkle import MerkleTree

    tree = MerkleTree()
    t0 = time.perf_counter()
    for i in range(2000):
        se = Entry(i, "solve.recorded", me.did, tree.root(), _body(i)).sign(me)
        tree.append(se.record)
    cpu_us = (time.perf_counter() - t0) / 2000 * 1e6

    t0 = time.perf_counter()
    reopened = Ledger.open(folder / "ledger.catl")
    t_open = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = reopened.verify()
    t_verify = time.perf_counter() - t0
    if not report.ok or report.size != n:
        raise RuntimeError(f"the benchmark ledger does not verify: {report.problems[:3]}")

    incl, cons = [], []
    for k in range(50):
        i = (k * 7919) % n
        t0 = time.perf_counter()
        reopened.prove(i)
        incl.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        reopened.consistency(max(1, i))
        cons.append(time.perf_counter() - t0)
    return {
        "entries": n,
        "bytes_per_entry": (folder / "ledger.catl").stat().st_size / n,
        "fsync_ms": fsync_ms,
        "batched_s": t_batch,
        "batched_per_s": n / t_batch,
        "single_entries": count,
        "single_s": t_single,
        "single_per_s": count / t_single,
        "cpu_us_per_entry": cpu_us,
        "open_s": t_open,
        "verify_s": t_verify,
        "verify_full_s": t_open + t_verify,
        "inclusion_ms": statistics.median(incl) * 1e3,
        "consistency_ms": statistics.median(cons) * 1e3,
    }


class _Timer:
    """Wraps a function, adding up calls and seconds."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn, self.calls, self.seconds = fn, 0, 0.0

    def __call__(self, *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.fn(*args)
        finally:
            self.seconds += time.perf_counter() - t0
            self.calls += 1


def _signing_numbers(repeats: int) -> dict[str, float]:
    from catopt_dsl.compile import load_plan
    from catopt_dsl.solver import SolveOptions, solve
    from catopt_dsl.sync import auth as auth_module
    from catopt_dsl.sync.auth import RunAuth
    from catopt_dsl.sync.run import DistributedSolve

    plan = load_plan(SITES)
    options = SolveOptions()
    # 200 sites, four owners of 50 sites each: nodes stay within one owner.
    tenants = [Identity.from_seed(bytes([20 + k]) * 32) for k in range(4)]
    owners = Owners({o.name: tenants[min(3, i // 50)].did for i, o in enumerate(plan.objects)})
    run_auth = RunAuth(owners, {t.did: t for t in tenants}, Identity.from_seed(bytes([9]) * 32))

    def one(auth: RunAuth | None) -> tuple[float, int, Any]:
        run = DistributedSolve(plan, options, auth=auth)
        t0 = time.perf_counter()
        result = run.run()
        return time.perf_counter() - t0, run.trace.rounds, result

    # Plain and signed runs alternate, and medians are taken, so a load change on a shared machine
    # hits both sides alike.
    plain_times, signed_times, sign_times, verify_times = [], [], [], []
    signs = verifies = rounds_signed = 0
    rounds = 0
    result_plain = result_signed = None
    for _ in range(repeats):
        t, rounds, result_plain = one(None)
        plain_times.append(t / rounds)
        sign_timer = _Timer(keys_module.Identity.sign)
        verify_timer = _Timer(auth_module.verify_signature)

        def timed_sign(self: Identity, context: bytes, message: bytes, _t: _Timer = sign_timer) -> bytes:
            return _t(self, context, message)  # type: ignore[no-any-return]

        keys_module.Identity.sign = timed_sign  # type: ignore[method-assign]
        auth_module.verify_signature = verify_timer  # type: ignore[assignment]
        try:
            t, rounds_signed, result_signed = one(run_auth)
        finally:
            keys_module.Identity.sign = sign_timer.fn  # type: ignore[method-assign]
            auth_module.verify_signature = verify_timer.fn
        signed_times.append(t / rounds_signed)
        sign_times.append(sign_timer.seconds / rounds_signed)
        verify_times.append(verify_timer.seconds / rounds_signed)
        signs, verifies = sign_timer.calls, verify_timer.calls
    assert result_plain is not None and result_signed is not None
    same = result_plain.status == result_signed.status and abs(result_plain.objective - result_signed.objective) <= 1e-9
    t0 = time.perf_counter()
    ref = solve(plan, options)
    inproc_round = (time.perf_counter() - t0) / max(1, ref.iterations or 1)
    round_plain = statistics.median(plain_times)
    round_signed = statistics.median(signed_times)
    sign_s = statistics.median(sign_times)
    verify_s = statistics.median(verify_times)
    return {
        "nodes": len(DistributedSolve(plan, options, auth=run_auth).assignment),
        "rounds": rounds_signed,
        "round_plain_ms": round_plain * 1e3,
        "round_signed_ms": round_signed * 1e3,
        "inprocess_round_ms": inproc_round * 1e3,
        "signatures_per_round": signs / rounds_signed,
        "verifications_per_round": verifies / rounds_signed,
        "sign_ms_per_round": sign_s * 1e3,
        "verify_ms_per_round": verify_s * 1e3,
        "sign_share": sign_s / round_plain,
        "verify_share": verify_s / round_plain,
        "overhead": round_signed / round_plain - 1.0,
        "same_result": float(same),
    }


def _fmt(v: float, digits: int = 3) -> str:
    return f"{v:.{digits}g}" if abs(v) < 1e3 else f"{v:,.0f}"


def run(quick: bool = False) -> dict[str, Any]:
    n = 2_000 if quick else 100_000
    with tempfile.TemporaryDirectory(prefix="catopt-bench-ledger-") as tmp:
        led = _ledger_numbers(n, Path(tmp), 3.0 if quick else 15.0)
    sig = _signing_numbers(1 if quick else 3)
    tables = [
        {
            "title": f"Ledger of {n:,} signed entries ({led['bytes_per_entry']:.0f} bytes each on disk)",
            "columns": ["measure", "value"],
            "rows": [
                ["append, group commit of 100 (one fsync per batch)", f"{_fmt(led['batched_per_s'])} entries/s ({led['batched_s']:.1f} s)"],
                ["append, one fsync per entry", f"{_fmt(led['single_per_s'])} entries/s ({led['single_entries']:,} entries)"],
                ["fsync of 1 KiB on this disk (median)", f"{led['fsync_ms']:.2f} ms"],
                ["CPU per append without the disk (sign, encode, tree)", f"{led['cpu_us_per_entry']:.0f} us"],
                ["open (read, checksums, tree)", f"{led['open_s']:.2f} s"],
                ["verify (every signature, chain, tree)", f"{led['verify_s']:.2f} s"],
                ["inclusion proof (median)", f"{led['inclusion_ms']:.3f} ms"],
                ["consistency proof (median)", f"{led['consistency_ms']:.3f} ms"],
            ],
        },
        {
            "title": f"Signed frames on sites_200 ({sig['nodes']} nodes, {sig['rounds']} rounds)",
            "columns": ["measure", "value"],
            "rows": [
                ["unsigned distributed round", f"{sig['round_plain_ms']:.1f} ms"],
                ["signed distributed round", f"{sig['round_signed_ms']:.1f} ms ({100 * sig['overhead']:+.0f}%)"],
                ["Ed25519 signatures per round (unicast Acks and Snapshots are MAC'd)", f"{sig['signatures_per_round']:.0f} ({sig['sign_ms_per_round']:.2f} ms)"],
                ["Ed25519 verifications per round", f"{sig['verifications_per_round']:.0f} ({sig['verify_ms_per_round']:.2f} ms)"],
                ["in-process solver round, for scale", f"{sig['inprocess_round_ms']:.1f} ms"],
                ["same result signed and unsigned", "yes" if sig["same_result"] else "NO"],
            ],
        },
    ]
    full = n >= 100_000
    size_note = "" if full else f" (quick run: {n:,} entries)"
    targets = [
        {
            "name": "durable signed appends",
            "required": "> 2,000 entries/s (100,000 entries)",
            "measured": f"{_fmt(led['batched_per_s'])} entries/s in group commits of 100{size_note}; "
            f"{_fmt(led['single_per_s'])}/s with an fsync per entry (fsync {led['fsync_ms']:.2f} ms here)",
            "met": led["batched_per_s"] > 2000,
            "reason": "" if led["batched_per_s"] > 2000 else "signing and encoding are slower than budgeted",
        },
        {
            "name": "full verify",
            "required": "< 60 s (100,000 entries)",
            "measured": f"{led['verify_full_s']:.1f} s (open + verify){size_note}",
            "met": led["verify_full_s"] < 60,
            "reason": "" if led["verify_full_s"] < 60 else "signature verification dominates",
        },
        {
            "name": "signing cost per ADMM round (sites_200)",
            "required": "< 10% of an unsigned round",
            "measured": f"{100 * sig['sign_share']:.1f}% ({sig['sign_ms_per_round']:.2f} of {sig['round_plain_ms']:.1f} ms); "
            f"verification {100 * sig['verify_share']:.1f}%, end to end {100 * sig['overhead']:+.0f}%",
            "met": sig["sign_share"] < 0.10,
            "reason": "" if sig["sign_share"] < 0.10 else "more frames per round than budgeted",
        },
    ]
    notes = [
        "`benchmarks/bench_ledger.py`: one run; the ledger lives in a temporary folder on the same disk as the checkout.",
        ("End to end, a signed round costs signing plus verification; in this one-process run all nodes verify "
        "the broadcast in turn, so verification counts once per node, which a deployment spreads over the nodes' machines."),
    ]
    return {"quick": quick, "tables": tables, "targets": targets, "notes": notes, "ledger": led, "signing": sig}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2, default=str))
