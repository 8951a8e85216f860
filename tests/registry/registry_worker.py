"""A worker process for the reliability tests: ``python registry_worker.py MODE TARGET ...``.

race SUBJECT WORKER COUNT  register COUNT versions of SUBJECT, each the latest plus one field
                           of this worker's, retrying when another worker took the number
idem                       register the same five versions of ``Same`` everyone registers
loop SUBJECT WORKER        like race, forever (until killed); prints each success
hold                       open a write transaction, write a version into it, print `inside`,
                           and wait to be killed

Each success is printed as ``ok <version> <hash>`` (flushed), so the parent knows what committed.
Workers wait for the file ``$GO`` (when set) before starting, so they start at once.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from catopt_dsl.ir.model import IRSchema, IRSchemaField
from catopt_dsl.registry.documents import canonical_text, content_hash
from catopt_dsl.registry.errors import IncompatibleSchema, InvalidVersion, StoreError
from catopt_dsl.registry.registry import Registry, open_registry


def _wait_for_go() -> None:
    go = os.environ.get("GO")
    if go:
        while not os.path.exists(go):
            time.sleep(0.005)


def _next(reg: Registry, subject: str, field: str) -> IRSchema:
    history = reg.history(subject)  # one snapshot (these tests delete nothing, so its last is the top)
    top = history[-1].version if history else 0
    fields = history[-1].document.fields if history else ()
    return IRSchema(subject, top + 1, (*fields, IRSchemaField(field, "float", (), 0.0)))  # type: ignore[arg-type]


def register_one(reg: Registry, subject: str, field: str) -> None:
    while True:
        doc = _next(reg, subject, field)
        try:
            result = reg.register(subject, doc)
        except (InvalidVersion, IncompatibleSchema, StoreError):
            # Another worker registered this number first (InvalidVersion), or registered one between
            # our read and our write, so our version no longer extends the latest (IncompatibleSchema:
            # the registry refuses a stale writer), or the lock wait timed out: read again and retry.
            continue
        print(f"ok {result.version} {content_hash(doc)}", flush=True)
        return


def main(argv: list[str]) -> None:
    mode, target = argv[0], argv[1]
    reg = open_registry(target)
    assert isinstance(reg, Registry)
    _wait_for_go()
    if mode == "race":
        subject, worker, count = argv[2], argv[3], int(argv[4])
        for k in range(count):
            register_one(reg, subject, f"w{worker}_{k}")
    elif mode == "loop":
        subject, worker = argv[2], argv[3]
        k = 0
        while True:
            register_one(reg, subject, f"w{worker}_{k}_{time.monotonic_ns()}")
            k += 1
    elif mode == "idem":
        fields: tuple[IRSchemaField, ...] = ()
        for v in range(1, 6):
            fields = (*fields, IRSchemaField(f"f{v}", "float", (2,), [0.0, 0.0]))
            doc = IRSchema("Same", v, fields)
            result = reg.register("Same", doc)
            print(f"ok {result.version} {content_hash(doc)} {result.id}", flush=True)
    elif mode == "hold":
        doc = IRSchema("Held", 99, (IRSchemaField("x", "float", (), None),))
        with reg.store.write() as tx:
            sid = tx.insert_schema(content_hash(doc), "CATOPT", canonical_text(doc))
            tx.insert_version("Held", 1, sid)
            print("inside", flush=True)
            time.sleep(120)  # killed here, mid-transaction
    else:
        raise SystemExit(f"unknown mode {mode}")
    reg.close()


if __name__ == "__main__":
    main(sys.argv[1:])
