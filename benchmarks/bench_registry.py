"""Schema registry benchmark: registrations per second and lookups per second on SQLite.

Workload: 1,000 subjects with 10 versions each (10,000 registrations; ``--quick``: 50 subjects
with 4 versions). Version ``k`` of a subject appends one field with a default to version ``k-1``,
so every registration passes its compatibility check, and the check is part of what is timed.
Versions are registered round-robin (version 1 of every subject, then version 2, ...), each one its
own write transaction, into a fresh registry file, as ``Registry.register`` does for a CLI or REST
client. Documents are built before the clock starts (no `.cat` parsing is timed).

Rows: the default durability (``synchronous=FULL``: every registration is fsynced before it
returns) under BACKWARD, the same with ``synchronous=NORMAL`` (survives a killed process, not a
power cut), and FULL_TRANSITIVE (each registration checked against every earlier version) with
NORMAL. Lookups, on the full registry of the first row: ``get(subject, version)`` of random
versions, ``get(subject, "latest")``, and lookup by content (``lookup``, which hashes the document),
10,000 each (``--quick``: 1,000), in one thread. The issue states no numeric target, so none is
judged; the numbers are reported side by side.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import fmt_num
from catopt_dsl.ir.model import IRSchema, IRSchemaField
from catopt_dsl.registry.compat import Mode
from catopt_dsl.registry.registry import Registry
from catopt_dsl.registry.store import SqliteStore


def _documents(subjects: int, versions: int) -> list[IRSchema]:
    """Round-robin order: every subject's v1, then every v2, ..."""
    fields: dict[str, tuple[IRSchemaField, ...]] = {}
    docs: list[IRSchema] = []
    for v in range(1, versions + 1):
        for s in range(subjects):
            name = f"Subject{s:04d}"
            extra = IRSchemaField(f"f{v}", "float", (4,), None if v == 1 else [0.0, 0.0, 0.0, 0.0])
            fields[name] = (*fields.get(name, ()), extra)
            docs.append(IRSchema(name, v, fields[name]))
    return docs


def _register_all(path: Path, docs: list[IRSchema], synchronous: str, mode: Mode) -> tuple[float, Registry]:
    reg = Registry(SqliteStore(path, synchronous=synchronous))
    reg.set_config(mode)
    start = time.perf_counter()
    for doc in docs:
        reg.register(doc.name, doc)
    return time.perf_counter() - start, reg


def _lookups(reg: Registry, docs: list[IRSchema], n: int, rng: random.Random) -> dict[str, float]:
    picks = [docs[rng.randrange(len(docs))] for _ in range(n)]
    out: dict[str, float] = {}
    start = time.perf_counter()
    for d in picks:
        reg.get(d.name, d.version)
    out["get(subject, version)"] = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for d in picks:
        reg.get(d.name, "latest")
    out["get(subject, latest)"] = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for d in picks:
        reg.lookup(d.name, d)
    out["lookup by content"] = n / (time.perf_counter() - start)
    return out


def run(quick: bool) -> dict[str, Any]:
    subjects, versions = (50, 4) if quick else (1000, 10)
    n_lookups = 1_000 if quick else 10_000
    docs = _documents(subjects, versions)
    rng = random.Random(20261101)
    work = Path(tempfile.mkdtemp(prefix="catopt-bench-registry-"))
    rows: list[list[str]] = []
    cases: list[dict[str, Any]] = []
    lookups: dict[str, float] = {}
    try:
        for synchronous, mode in (("FULL", Mode.BACKWARD), ("NORMAL", Mode.BACKWARD), ("NORMAL", Mode.FULL_TRANSITIVE)):
            path = work / f"{synchronous}_{mode.value}.db"
            elapsed, reg = _register_all(path, docs, synchronous, mode)
            try:
                stored = sum(len(reg.versions(f"Subject{s:04d}")) for s in range(subjects))
                assert stored == len(docs), f"{stored} versions stored, {len(docs)} registered"
                if not lookups:
                    lookups = _lookups(reg, docs, n_lookups, rng)
            finally:
                reg.close()
            with sqlite3.connect(path) as conn:
                size = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
            rate = len(docs) / elapsed
            cases.append({"synchronous": synchronous, "mode": mode.value, "registrations": len(docs),
                          "seconds": elapsed, "per_s": rate, "db_bytes": size})
            rows.append([f"synchronous={synchronous}", mode.value, str(len(docs)), fmt_num(elapsed),
                         fmt_num(rate), fmt_num(size / 2**20)])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = cases[0]["per_s"]
    for row, case in zip(rows, cases, strict=True):
        row.append(fmt_num(case["per_s"] / base))
    return {
        "tables": [
            {
                "title": f"Registrations: {subjects:,} subjects x {versions} versions, one transaction each",
                "columns": ["durability", "mode", "registrations", "seconds", "registrations/s", "DB MiB",
                            "vs synchronous=FULL"],
                "rows": rows,
            },
            {
                "title": f"Lookups on the {len(docs):,}-version registry ({n_lookups:,} each, one thread)",
                "columns": ["call", "lookups/s"],
                "rows": [[name, fmt_num(rate)] for name, rate in lookups.items()],
            },
        ],
        "targets": [],
        "notes": [
            "No numeric target is set for the registry; rates are measured in this run, side by side.",
            "synchronous=FULL fsyncs every registration: its rate is bounded by the disk's fsync latency.",
        ],
        "cases": cases,
        "lookups": lookups,
    }


if __name__ == "__main__":  # pragma: no cover - manual runs
    import json
    import sys

    print(json.dumps(run("--quick" in sys.argv), indent=2))
