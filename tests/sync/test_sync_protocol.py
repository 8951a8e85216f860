"""Protocol state machines driven directly: idempotence, ordering, fencing, gaps, node behaviour."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from catopt_dsl.sync.messages import (
    Ack,
    AckStatus,
    Broadcast,
    Delta,
    Envelope,
    Join,
    Leave,
    Snapshot,
    SnapshotRequest,
    decode_message,
    encode_message,
)
from catopt_dsl.sync.protocol import CoordinatorProtocol, NodeProtocol, SyncSettings
from catopt_dsl.sync.toy import AveragingCoordinator, AveragingNode


def _coord() -> tuple[CoordinatorProtocol, AveragingCoordinator]:
    app = AveragingCoordinator()
    c = CoordinatorProtocol(app, SyncSettings())
    c.start(0)
    return c, app


def _join(c: CoordinatorProtocol, sender: int, boot: int, now: int = 1, hint: int = 0) -> Snapshot:
    """A Join from the process started as ``boot`` that last held incarnation ``hint``."""
    out = c.receive(encode_message(Join(Envelope(sender, 0, 0, 0), f"n{sender}", hint, boot)), now)
    snaps = [decode_message(d) for dst, d in out if dst == sender]
    snap = [m for m in snaps if isinstance(m, Snapshot)]
    assert len(snap) == 1
    return snap[0]


def _delta(sender: int, epoch: int, seq: int, rnd: int, inc: float) -> bytes:
    return encode_message(Delta(Envelope(sender, epoch, seq, rnd), {"inc": np.array([inc])}))


@settings(max_examples=150, deadline=None)
@given(
    ops=st.lists(st.one_of(st.just(-1), st.integers(0, 200)), min_size=1, max_size=50),
    rejoin_at=st.integers(0, 60),
    incs=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=50, max_size=50),
)
def test_duplicates_and_replays_never_change_the_result(ops: list[int], rejoin_at: int, incs: list[float]) -> None:
    """-1 sends the next Delta; k >= 0 replays an earlier frame (possibly from a fenced incarnation)."""
    c, app = _coord()
    snap = _join(c, 1, 0)
    epoch, seq, inc_i = snap.joined_epoch, 1, 0
    sent: list[tuple[bytes, int]] = []  # (bytes, joined epoch it was sent under)
    expected_log: list[tuple[int, int, int, int]] = []
    expected_sum = 0.0
    for k, op in enumerate(ops):
        if k == rejoin_at:
            # the node restarts (a new process, boot 1): a new incarnation, a new epoch; everything
            # earlier is fenced
            snap = _join(c, 1, 1, now=k + 2)
            epoch, seq, expected_sum = snap.joined_epoch, 1, 0.0
        if op == -1 or not sent:
            rnd = c.round
            frame = _delta(1, c.epoch, seq, rnd, incs[inc_i])
            out = c.receive(frame, k + 2)
            acks = [decode_message(d) for _, d in out if isinstance(decode_message(d), Ack)]
            assert [a.status for a in acks] == [AckStatus.APPLIED]
            expected_log.append((1, epoch, seq, rnd))
            expected_sum += incs[inc_i]
            sent.append((frame, epoch))
            seq += 1
            inc_i += 1
        else:
            frame, sent_epoch = sent[op % len(sent)]
            before = (list(c.applied_log), dict(app.sums), c.round)
            out = c.receive(frame, k + 2)
            assert (c.applied_log, app.sums, c.round) == before  # nothing applied, nothing closed
            replies = [decode_message(d) for _, d in out]
            if sent_epoch == epoch:
                assert [(type(r), r.status) for r in replies] == [(Ack, AckStatus.DUPLICATE)]
            else:
                assert replies == []  # stale epoch: fenced silently, never applied
    assert c.applied_log == expected_log
    assert app.sums[1] == expected_sum  # bitwise: the same additions in the same order


def test_sequence_gap_triggers_resync_and_fences_the_old_stream() -> None:
    c, app = _coord()
    snap = _join(c, 1, 0)
    c.receive(_delta(1, c.epoch, 1, 0, 2.0), 2)
    out = c.receive(_delta(1, c.epoch, 3, 1, 5.0), 3)  # seq 2 never arrived
    assert c.stats.gaps == 1 and c.applied_log == [(1, snap.joined_epoch, 1, 0)]
    (resync,) = [decode_message(d) for _, d in out]
    assert isinstance(resync, Snapshot)
    assert resync.joined_epoch > snap.joined_epoch and resync.next_seq == 1
    assert float(resync.state["s"][0]) == 2.0  # the coordinator's authoritative view
    # seq 2 of the old admission arriving late is fenced, not applied
    assert c.receive(_delta(1, snap.joined_epoch, 2, 1, 9.0), 4) == []
    assert c.stats.fenced == 1 and app.sums[1] == 2.0
    # the node continues from the resync
    c.receive(_delta(1, c.epoch, 1, c.round, 1.0), 5)
    assert app.sums[1] == 3.0


def test_snapshot_request_and_join_retries() -> None:
    c, _ = _coord()
    s1 = _join(c, 4, 1)
    assert s1.incarnation == 1  # assigned by the coordinator (InitProducerId)
    s1b = _join(c, 4, 1)  # a retried Join: same admission, nothing changes
    assert (s1b.joined_epoch, s1b.incarnation) == (s1.joined_epoch, 1) and c.epoch == s1.joined_epoch
    out = c.receive(encode_message(SnapshotRequest(Envelope(4, c.epoch, 0, 0), 1)), 3)
    (s2,) = [decode_message(d) for _, d in out]
    assert isinstance(s2, Snapshot) and s2.joined_epoch == s1.joined_epoch + 1
    # a replay of the same request carries the old epoch: fenced
    assert c.receive(encode_message(SnapshotRequest(Envelope(4, s1.joined_epoch, 0, 0), 1)), 4) == []
    # a Join from a newer process replaces the member with a new incarnation; one from an older
    # process (a zombie) is fenced, whatever incarnation it claims
    s3 = _join(c, 4, 5)
    assert s3.joined_epoch == c.epoch and c.members == (4,) and s3.incarnation == 2
    fenced = c.stats.fenced
    assert c.receive(encode_message(Join(Envelope(4, 0, 0, 0), "n4", 9, 4)), 6) == []
    assert c.stats.fenced == fenced + 1 and c.incarnations == {4: 2}
    assert [e.kind for e in c.events] == ["joined", "resync", "replaced", "restarted"]


def test_incarnations_are_assigned_and_zombies_fenced() -> None:
    """A restarted process rejoins at once; the dead one's frames, Joins and retries are fenced."""
    c, app = _coord()
    first = _join(c, 1, boot=1)
    _join(c, 2, boot=1)
    c.receive(_delta(1, c.epoch, 1, 0, 4.0), 2)
    c.receive(_delta(2, c.epoch, 1, 0, 8.0), 2)
    assert c.round == 1
    zombie_epoch = c.epoch
    # node 1 crashes and its new process (boot 2) joins before the member timeout
    second = _join(c, 1, boot=2, now=3)
    assert second.incarnation == first.incarnation + 1 and c.members == (1, 2)
    assert c.stats.restarts == 1 and app.sums[1] == 0.0  # the old share is released, the new one starts
    # the old process's Delta (it was only hung) is fenced; its stale Join too
    before = list(c.applied_log)
    assert c.receive(_delta(1, zombie_epoch, 2, 1, 100.0), 4) == []
    assert c.receive(encode_message(Join(Envelope(1, 0, 0, 0), "n1", first.incarnation, 1)), 4) == []
    assert c.applied_log == before and c.stats.fenced >= 2
    # the new process's stream is applied
    c.receive(_delta(1, c.epoch, 1, 1, 2.0), 5)
    c.receive(_delta(2, c.epoch, 2, 1, 0.0), 5)
    assert c.round == 2 and app.sums[1] == 2.0
    # dropped, the same process rejoins with the incarnation it held: a new one is assigned
    c._remove(1, "dropped")
    third = _join(c, 1, boot=2, now=6, hint=second.incarnation)
    assert third.incarnation == second.incarnation + 1
    # a late network copy of its original Join (hint 0) changes nothing now
    epoch = c.epoch
    assert c.receive(encode_message(Join(Envelope(1, 0, 0, 0), "n1", 0, 2)), 7) != [] and c.epoch == epoch
    assert c.incarnations == {1: third.incarnation, 2: 1}


def test_non_members_are_not_applied_and_learn_the_membership() -> None:
    c, _ = _coord()
    _join(c, 1, 0)
    out = c.receive(_delta(9, c.epoch, 1, 0, 1.0), 2)
    assert c.applied_log == [] and c.stats.non_member == 1
    (b,) = [decode_message(d) for _, d in out]
    assert isinstance(b, Broadcast) and 9 not in b.members


def test_leave_releases_the_share_and_bumps_the_epoch() -> None:
    c, app = _coord()
    _join(c, 1, 0)
    _join(c, 2, 0)
    c.receive(_delta(1, c.epoch, 1, 0, 4.0), 3)
    c.receive(_delta(2, c.epoch, 1, 0, 8.0), 3)
    assert c.round == 1 and app.history[-1][2] == 6.0
    e = c.epoch
    out = c.receive(encode_message(Leave(Envelope(2, c.epoch, 2, 1), "bye")), 4)
    assert [decode_message(d).status for _, d in out] == [AckStatus.LEFT]
    assert c.members == (1,) and c.epoch == e + 1 and 2 not in app.sums
    # a retried Leave is acknowledged again
    out = c.receive(encode_message(Leave(Envelope(2, e, 2, 1), "bye")), 5)
    assert [decode_message(d).status for _, d in out] == [AckStatus.LEFT]
    c.receive(_delta(1, c.epoch, 2, 1, 0.0), 6)
    assert app.history[-1] == (1, (1,), 4.0)


def test_node_answers_one_broadcast_at_a_time_and_retransmits_same_bytes() -> None:
    app = AveragingNode(10.0)
    n = NodeProtocol(3, "n3", app, SyncSettings(retransmit_after=2))
    (join,) = n.start(0)
    assert join[0] == 0 and isinstance(decode_message(join[1]), Join)
    assert n.tick(1) == [] and n.tick(2) == [join]  # Join retried until answered
    z = {"z": np.zeros(1)}
    stale = Snapshot(Envelope(0, 5, 9, 0), z, 1.0, (3,), {"s": np.array([0.0])}, 1, 4, 0)
    assert n.receive(encode_message(stale), 3) == []  # no incarnation assigned to this Join
    snap = Snapshot(Envelope(0, 5, 10, 0), z, 1.0, (3,), {"s": np.array([0.0])}, 1, 5, 1)
    (d1,) = n.receive(encode_message(snap), 3)
    assert n.incarnation == 1
    m1 = decode_message(d1[1])
    assert isinstance(m1, Delta) and m1.env.seq == 1 and m1.env.epoch == 5 and m1.env.round == 0
    # a newer broadcast while Delta 1 is unacknowledged waits
    assert n.receive(encode_message(Broadcast(Envelope(0, 5, 11, 1), z, 1.0, (3,))), 4) == []
    assert n.tick(5) == [d1]  # same bytes again
    assert n.receive(encode_message(snap), 6) == []  # duplicate Snapshot: ignored
    assert n.receive(encode_message(Ack(Envelope(0, 5, 12, 1), 1, 4, AckStatus.APPLIED)), 6) == []  # wrong admission
    (d2,) = n.receive(encode_message(Ack(Envelope(0, 5, 13, 1), 1, 5, AckStatus.APPLIED)), 7)
    m2 = decode_message(d2[1])
    assert isinstance(m2, Delta) and m2.env.seq == 2 and m2.env.round == 1
    assert app.x == 7.5  # two half steps towards 10
    # a broadcast that no longer lists the node: it rejoins with a new incarnation
    n.receive(encode_message(Ack(Envelope(0, 5, 14, 1), 2, 5, AckStatus.APPLIED)), 8)
    (rejoin,) = n.receive(encode_message(Broadcast(Envelope(0, 6, 15, 2), z, 1.0, (1,))), 9)
    j = decode_message(rejoin[1])
    # it tells the coordinator the incarnation it held; the coordinator assigns the next
    assert isinstance(j, Join) and j.incarnation == 1 and n.status == "joining"


def test_frames_from_another_plan_or_garbage_are_rejected() -> None:
    c = CoordinatorProtocol(AveragingCoordinator(), SyncSettings(spec_hash=b"\x01" * 32))
    c.start(0)
    assert c.receive(encode_message(Join(Envelope(1, 0, 0, 0), "n1", 0)), 1) == []
    assert c.receive(b"\x00" * 100, 1) == []
    assert c.stats.errors == {"SpecHashMismatch": 1, "BadMagicError": 1} and c.members == ()
