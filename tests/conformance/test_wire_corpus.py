"""The shared hostile corpus (wire_corpus.py) against the Python side: the decoders raise nothing but
a WireError, accept only canonical bytes, and the protocol state machines drop and count every
frame that does not decode -- a coordinator fed the whole corpus during a solve reaches the same
optimum, iterate for iterate, as without it."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from make_vectors import EDGE_SPEC, sample_values
from wire_corpus import (
    CORPUS_HASH,
    MAX_PAYLOAD,
    frame_corpus,
    frame_outcome,
    record_corpus,
    record_outcome,
)

from catopt_dsl.backends.common import all_schemas
from catopt_dsl.compile import load_plan
from catopt_dsl.ir.model import IRSchema
from catopt_dsl.solver import solve, solve_centralized
from catopt_dsl.sync.frame import spec_hash_bytes
from catopt_dsl.sync.messages import decode_message
from catopt_dsl.sync.protocol import CoordinatorProtocol, NodeProtocol, SyncSettings
from catopt_dsl.sync.run import DistributedSolve
from catopt_dsl.sync.toy import AveragingCoordinator, AveragingNode
from catopt_dsl.sync.transport import FaultPlan, FaultyTransport
from catopt_dsl.wire.errors import WireError

ROOT = Path(__file__).resolve().parents[2]
KINDS = {"Truncated", "Checksum", "BadMagic", "Version", "Length", "TooLarge", "Malformed", "UnknownMessageType"}


@lru_cache(maxsize=1)
def frames() -> tuple[bytes, ...]:
    return tuple(data for group in frame_corpus().values() for data in group)


@lru_cache(maxsize=1)
def records() -> tuple[tuple[IRSchema, bytes], ...]:
    schemas = all_schemas(load_plan(EDGE_SPEC))
    from catopt_dsl.wire.record import encode_record

    return tuple(record_corpus([(s, encode_record(s, sample_values(s))) for s in schemas]))


def message_rejected(data: bytes) -> bool:
    """Whether the protocol's decoder (frame and message) refuses ``data``; any exception other
    than a WireError propagates and fails the test."""
    try:
        decode_message(data, max_payload=MAX_PAYLOAD)
    except WireError:
        return True
    return False


def test_the_corpus_covers_every_category_and_frame_error_kind() -> None:
    groups = frame_corpus()
    assert {k: len(v) > 0 for k, v in groups.items()} == dict.fromkeys(
        ("valid", "cases", "mutated", "truncated", "lying", "garbage"), True
    )
    outcomes = Counter(frame_outcome(d) for d in frames())
    assert set(outcomes) == KINDS | {"ok"}, outcomes
    assert len(frames()) > 1000
    record_kinds = Counter(record_outcome(r, d).split(" ")[0] for r, d in records())
    assert {"ok", "Truncated", "Malformed", "SchemaMismatch", "Checksum", "BadMagic"} <= set(record_kinds)


def test_frame_decoders_raise_only_wire_errors_and_accept_only_canonical_frames() -> None:
    for data in frames():
        assert frame_outcome(data) != "noncanonical", data.hex()
        message_rejected(data)  # decode_message too: a WireError or a message, nothing else


def test_record_decoder_raises_only_wire_errors_and_accepts_only_canonical_records() -> None:
    for reader, data in records():
        outcome = record_outcome(reader, data)
        if outcome.startswith("ok") and data[8 + len(reader.name) :][:4] == reader.version.to_bytes(4, "little"):
            # written by the reader's own version: the re-encoding is the input itself
            assert outcome == "ok " + data.hex()


@pytest.mark.parametrize("spec_hash", [bytes(32), CORPUS_HASH], ids=["other-plan", "same-plan"])
def test_protocol_receivers_drop_and_count_every_undecodable_frame(spec_hash: bytes) -> None:
    """Fed the whole corpus, neither state machine raises; every frame that does not decode is
    dropped and counted. With the corpus' own spec hash, the frames that do decode reach the state
    machines (joins, deltas from strangers, broadcasts...) and are handled as the protocol says."""
    settings = SyncSettings(spec_hash=spec_hash, max_payload=MAX_PAYLOAD)
    coordinator = CoordinatorProtocol(AveragingCoordinator(), settings)
    coordinator.start(0)
    node = NodeProtocol(3, "n3", AveragingNode(1.0), settings)
    node.start(0)
    undecodable = 0
    for now, data in enumerate(frames(), start=1):
        undecodable += message_rejected(data)
        coordinator.receive(data, now)
        node.receive(data, now)
        coordinator.tick(now)
    for stats in (coordinator.stats, node.stats):
        assert stats.undecodable == undecodable > 0
        assert stats.errors.get("DecoderFault", 0) == 0
        assert sum(v for k, v in stats.errors.items() if k.endswith("Error")) == undecodable
    if spec_hash == bytes(32):
        assert coordinator.stats.rejected == len(frames())  # the rest: SpecHashMismatch


class CorpusTransport:
    """A perfect transport that also delivers, every tick, the next few corpus frames: to the
    coordinator and, in turn, to each node."""

    def __init__(self, corpus: tuple[bytes, ...], node_ids: list[int], per_tick: int = 6) -> None:
        self.inner = FaultyTransport(FaultPlan(), seed=0)
        self.corpus = list(corpus)
        self.node_ids = node_ids
        self.per_tick = per_tick
        self.to_coordinator: list[bytes] = []

    def send(self, src: int, dst: int, data: bytes, now: int) -> None:
        self.inner.send(src, dst, data, now)

    def deliver(self, now: int) -> list[tuple[int, int, bytes]]:
        out = self.inner.deliver(now)
        for k in range(self.per_tick):
            if not self.corpus:
                break
            data = self.corpus.pop()
            dst = 0 if k % 2 == 0 else self.node_ids[(now + k) % len(self.node_ids)]
            if dst == 0:
                self.to_coordinator.append(data)
            out.append((0xBAD, dst, data))
        return out


def test_a_coordinator_fed_the_corpus_keeps_running_and_reaches_the_optimum() -> None:
    plan = load_plan(ROOT / "examples" / "plan_deltas.cat")
    ref = solve(plan)
    assert spec_hash_bytes(plan.spec_hash) != CORPUS_HASH
    undisturbed = DistributedSolve(plan)
    undisturbed.run()
    node_ids = sorted(undisturbed.assignment)
    # spread the corpus over the first half of the run's ticks (it ends when the solve does)
    per_tick = 2 * len(frames()) // undisturbed.trace.ticks + 2
    transport = CorpusTransport(frames(), node_ids, per_tick=per_tick)
    run = DistributedSolve(plan, transport=transport)
    result = run.run()
    assert not transport.corpus, "the solve ended before the whole corpus was delivered"
    assert result.status == "optimal", result.message
    # every corpus frame was dropped: the ADMM is the in-process one, iterate for iterate
    assert result.iterations == ref.iterations and result.objective == ref.objective
    for obj, values in ref.objects.items():
        for var, val in values.items():
            np.testing.assert_array_equal(result.objects[obj][var], val)
    central = solve_centralized(plan)
    assert result.objective is not None and central.objective is not None
    assert abs(result.objective - central.objective) <= 1e-4 * max(1.0, abs(central.objective))
    stats = run.trace.coordinator_stats
    assert stats.undecodable == sum(message_rejected(d) for d in transport.to_coordinator) > 0
    assert stats.errors.get("DecoderFault", 0) == 0
