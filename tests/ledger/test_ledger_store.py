"""The ledger file under crashes and tampering: torn appends, a SIGKILLed writer, flipped bytes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from catopt_dsl.identity import Identity
from catopt_dsl.ledger import Ledger, LedgerDamagedError, LedgerError, TreeHead
from catopt_dsl.ledger.canonical import CanonicalError, canonical_json, parse_canonical
from catopt_dsl.ledger.entry import Entry, EntryError
from catopt_dsl.ledger.store import FILE_HEADER, encode_record, scan

ROOT = Path(__file__).resolve().parents[2]
ALICE = Identity.from_seed(bytes([7]) * 32)
BOB = Identity.from_seed(bytes([8]) * 32)


def _ledger(path: Path, n: int) -> Ledger:
    led = Ledger.open(path, create=True)
    for i in range(n):
        who = ALICE if i % 2 == 0 else BOB
        led.append(who, "spec.published", {"spec_hash": f"{i:064x}", "note": "é ü"})
    return led


def test_same_input_same_bytes(tmp_path: Path) -> None:
    _ledger(tmp_path / "a.catl", 6)
    _ledger(tmp_path / "b.catl", 6)
    assert (tmp_path / "a.catl").read_bytes() == (tmp_path / "b.catl").read_bytes()
    led = Ledger.open(tmp_path / "a.catl")
    assert led.size == 6 and led.verify().ok
    e = led.entry(3).entry
    assert (e.index, e.kind, e.actor, e.time) == (3, "spec.published", BOB.did, None)
    assert e.prev_root == led.root(3)
    timed = Ledger.open(tmp_path / "c.catl", create=True)
    se = timed.append(ALICE, "result.committed", {"ok": True}, time="2026-01-01T00:00:00Z")
    assert b'"time":"2026-01-01T00:00:00Z"' in se.data  # only a time the caller gave


def test_canonical_json_refuses_floats_and_non_canonical_bytes() -> None:
    assert canonical_json({"b": 1, "a": [True, None, "x"]}) == b'{"a":[true,null,"x"],"b":1}'
    with pytest.raises(CanonicalError, match="floats"):
        canonical_json({"objective": 1.5})
    with pytest.raises(CanonicalError, match="2\\^53"):
        canonical_json(2**60)
    for bad in (b'{"b":1,"a":2}', b'{"a": 2}', b'{"a":2,"a":3}', b'{"a":"\\u00e9"}', b"\xff"):
        with pytest.raises(CanonicalError):
            parse_canonical(bad)
    with pytest.raises(EntryError, match="kind"):
        Entry(0, "Bad Kind", ALICE.did, bytes(32))
    with pytest.raises(EntryError, match="actor"):
        Entry(0, "spec.published", "did:key:zXYZ", bytes(32))
    with pytest.raises(EntryError, match="the key is"):
        Entry(0, "spec.published", ALICE.did, bytes(32)).sign(BOB)


@pytest.mark.parametrize("cut", [1, 3, 4, 7, 11, 12, 40, -1])
def test_simulated_torn_write_loses_only_that_entry(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "l.catl"
    led = _ledger(path, 5)
    root5 = led.root()
    # The record a sixth append would write, cut short as a crash would leave it.
    nxt = Entry(5, "spec.published", ALICE.did, root5, {"x": 1}).sign(ALICE)
    rec = encode_record(nxt.record)
    with open(path, "ab") as f:
        f.write(rec[: cut if cut > 0 else len(rec) + cut])
    reopened = Ledger.open(path)
    assert reopened.size == 5 and reopened.root() == root5  # no earlier entry lost
    assert reopened.torn is not None and reopened.torn.index == 5  # detected and reported on open
    report = reopened.verify()
    assert not report.ok and any(p.index == 5 and "interrupted append" in p.message for p in report.problems)
    # The next append moves the torn bytes aside (nothing thrown away) and carries on.
    reopened.append(BOB, "spec.published", {"after": "crash"})
    ((torn, aside),) = reopened.recovered
    assert aside.read_bytes() == rec[: torn.length] and torn.offset == reopened._offsets[5]
    final = Ledger.open(path)
    assert final.size == 6 and final.verify().ok and final.root(5) == root5


def test_zero_filled_tail_is_a_torn_write(tmp_path: Path) -> None:
    path = tmp_path / "l.catl"
    _ledger(path, 3)
    with open(path, "ab") as f:
        f.write(bytes(300))
    led = Ledger.open(path)
    assert led.size == 3 and led.torn is not None and not led.damage


_CHILD = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, sys.argv[3])
    from catopt_dsl.identity import Identity
    from catopt_dsl.ledger import Ledger, store

    me = Identity.from_seed(bytes([7]) * 32)
    led = Ledger.open(sys.argv[1], create=True)
    mode = sys.argv[2]
    if mode == "midwrite":
        # Write the record in two halves and stop between them: the parent kills us there.
        real = store._write_all
        def slow(fd, data):
            if len(data) > 100:
                real(fd, data[: len(data) // 2])
                print("HALF", flush=True)
                time.sleep(60)
            real(fd, data)
        for i in range(20):
            led.append(me, "spec.published", {"i": i})
        print("READY", led.root().hex(), flush=True)
        store._write_all = slow
        led.append(me, "spec.published", {"i": 20})
    else:
        i = 0
        while True:
            led.append(me, "spec.published", {"i": i, "pad": "x" * (i % 200)})
            i += 1
            if i == 50:
                print("GO", flush=True)
    """
)


def _spawn(tmp_path: Path, mode: str) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "l.catl"), mode, str(ROOT)],
        stdout=subprocess.PIPE, text=True,
    )


def test_sigkill_in_the_middle_of_an_append(tmp_path: Path) -> None:
    proc = _spawn(tmp_path, "midwrite")
    assert proc.stdout is not None
    ready = proc.stdout.readline().split()
    assert ready[0] == "READY"
    assert proc.stdout.readline().strip() == "HALF"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    led = Ledger.open(tmp_path / "l.catl")
    assert led.size == 20 and led.root().hex() == ready[1]  # every committed entry survived
    assert led.torn is not None and led.torn.index == 20 and not led.damage  # the half record is reported
    assert [e.entry.body["i"] for e in led.entries()] == list(range(20))


def test_sigkill_at_a_random_moment(tmp_path: Path) -> None:
    proc = _spawn(tmp_path, "loop")
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "GO"
    time.sleep(0.05 + (os.getpid() % 7) * 0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    led = Ledger.open(tmp_path / "l.catl")
    assert led.size >= 50 and not led.damage
    assert [e.entry.body["i"] for e in led.entries()] == list(range(led.size))
    assert all(p.index == led.size for p in led.verify().problems)  # at most the entry being written


def test_flipping_any_byte_fails_verify_and_names_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "l.catl"
    _ledger(path, 4)
    good = path.read_bytes()
    offsets = Ledger.open(path)._offsets
    bounds = [*offsets, len(good)]
    for pos in range(len(good)):
        bad = bytearray(good)
        bad[pos] ^= 0x20
        path.write_bytes(bytes(bad))
        if pos < len(FILE_HEADER):
            with pytest.raises(LedgerError):
                Ledger.open(path)
            continue
        entry = max(i for i, off in enumerate(offsets) if off <= pos)
        assert bounds[entry] <= pos < bounds[entry + 1]
        report = Ledger.open(path).verify()
        assert not report.ok, f"byte {pos} flipped and verify passed"
        assert entry in {p.index for p in report.problems}, f"byte {pos}: {report.problems}"
    path.write_bytes(good)
    assert Ledger.open(path).verify().ok


def _rewrite(path: Path, payloads: list[bytes]) -> None:
    path.write_bytes(FILE_HEADER + b"".join(encode_record(p) for p in payloads))


def test_tampering_with_valid_checksums_is_caught_by_signatures_and_chain(tmp_path: Path) -> None:
    path = tmp_path / "l.catl"
    led = _ledger(path, 5)
    recs = [led.record(i) for i in range(5)]

    # An edited body (the checksum recomputed): the signature no longer verifies.
    edited = list(recs)
    edited[2] = recs[2].replace(b"\xc3\xa9 \xc3\xbc", b"\xc3\xa9 X")
    _rewrite(path, edited)
    probs = Ledger.open(path).verify().problems
    assert probs[0].index == 2 and "signature" in probs[0].message
    # and every later entry's prev_root no longer matches the (changed) history before it
    assert [(p.index, "prev_root" in p.message) for p in probs[1:]] == [(3, True), (4, True)]

    # A swapped public key: the actor replaced by another DID (re-signed bytes are impossible).
    swapped = list(recs)
    swapped[1] = recs[1].replace(BOB.did.encode(), ALICE.did.encode())
    _rewrite(path, swapped)
    probs = Ledger.open(path).verify().problems
    assert probs[0].index == 1 and "signature" in probs[0].message
    assert {p.index for p in probs} == {1, 2, 3, 4}

    # Reordered entries.
    _rewrite(path, [recs[0], recs[2], recs[1], recs[3], recs[4]])
    probs = Ledger.open(path).verify().problems
    assert {1, 2} <= {p.index for p in probs} and any("reordered" in p.message for p in probs)

    # An entry removed from the middle.
    _rewrite(path, [recs[0], recs[1], recs[3], recs[4]])
    assert 2 in {p.index for p in Ledger.open(path).verify().problems}

    # An insider re-signs a rewritten history: entries verify, but not against a saved head.
    _rewrite(path, recs)
    head = Ledger.open(path).head(ALICE)
    forged = Ledger.open(tmp_path / "forged.catl", create=True)
    for i in range(5):
        forged.append(ALICE if i != 3 else BOB, "spec.published", {"spec_hash": f"{i:064x}", "note": "é ü"})
    assert forged.verify().ok
    probs = forged.verify(head).problems
    assert len(probs) == 1 and probs[0].index is None and "not those the tree head" in probs[0].message


def test_truncation_at_a_record_boundary_needs_the_signed_head(tmp_path: Path) -> None:
    path = tmp_path / "l.catl"
    led = _ledger(path, 6)
    head = TreeHead.from_json(led.head(BOB, time="t1").to_json())
    assert head.verify() and head.size == 6
    data = path.read_bytes()
    path.write_bytes(data[: led._offsets[4]])  # the last two entries cut off cleanly
    cut = Ledger.open(path)
    assert cut.verify().ok  # nothing in the file itself shows it...
    probs = cut.verify(head).problems
    assert len(probs) == 1 and "entries were removed" in probs[0].message  # ...the head does
    path.write_bytes(data[: led._offsets[4] + 10])  # cut mid-record
    assert Ledger.open(path).torn is not None
    forged_head = TreeHead(head.size, head.root, ALICE.did, head.signature)
    assert not Ledger.open(path).verify(forged_head).ok


def test_damaged_ledgers_refuse_appends(tmp_path: Path) -> None:
    path = tmp_path / "l.catl"
    _ledger(path, 4)
    data = bytearray(path.read_bytes())
    off = Ledger.open(path)._offsets[1]
    data[off + 20] ^= 1
    path.write_bytes(bytes(data))
    led = Ledger.open(path)
    assert [d.index for d in led.damage] == [1] and led.size == 3  # entries 2, 3 still read
    with pytest.raises(LedgerDamagedError, match="entry 1"):
        led.append(ALICE, "spec.published", {})
    assert path.read_bytes() == bytes(data)
    for bad in (b"", b"CAT", b"NOPE0000", b"CATL\x02\x00\x00\x00", b"CATL\x01\x00\x01\x00"):
        path.write_bytes(bad)
        with pytest.raises(LedgerError):
            Ledger.open(path)
    with pytest.raises(LedgerError, match="no such ledger"):
        Ledger.open(tmp_path / "missing.catl")


def test_concurrent_writers_interleave_whole_entries(tmp_path: Path) -> None:
    path = tmp_path / "l.catl"
    a = Ledger.open(path, create=True)
    b = Ledger.open(path)
    a.append(ALICE, "spec.published", {"w": "a"})
    b.append(BOB, "spec.published", {"w": "b"})  # b re-reads the file it is behind on
    a.append(ALICE, "spec.published", {"w": "a2"})
    final = Ledger.open(path)
    assert final.verify().ok and [e.entry.body["w"] for e in final.entries()] == ["a", "b", "a2"]
    assert scan(path.read_bytes()).clean


def test_a_file_changed_or_removed_under_an_open_ledger_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "l.catl"
    led = _ledger(path, 2)
    path.write_bytes(b"garbage!")
    with pytest.raises(LedgerError, match="not a catopt ledger"):
        led.append(ALICE, "spec.published", {})
    path.unlink()
    with pytest.raises(LedgerError, match="cannot open"):
        led.append(ALICE, "spec.published", {})
