"""Signed frames and tenant isolation: the envelope, honest runs under faults, and an attack suite.

The attack suite runs ``examples/gpu_fleet.cat`` (four tenants, four owners, a shared capacity)
through :class:`DistributedSolve` with an attacker on the wire who can read every frame and
inject frames of its own: forged signatures, a swapped public key, an unknown DID, a tenant
speaking for another tenant's node or object, replays, stale epochs, frames for another plan,
unsigned frames and frames from a removed member. Each attack must be refused and counted under
its reason, and the solve must end exactly where it ends without the attacker. A control run
without authentication shows the same spoofed Delta *does* change the result there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from catopt_dsl.compile import load_plan
from catopt_dsl.identity import Identity, Owners
from catopt_dsl.ir.model import IRPlan
from catopt_dsl.solver import SolveOptions, SolveResult
from catopt_dsl.sync.auth import (
    SIGN_CONTEXT,
    AuthConfigError,
    CoordinatorAuth,
    RunAuth,
    pair_key,
    seal_frame,
    unseal,
)
from catopt_dsl.sync.frame import decode_frame
from catopt_dsl.sync.messages import (
    Ack,
    Delta,
    Envelope,
    Join,
    Message,
    decode_message,
    encode_message,
)
from catopt_dsl.sync.protocol import COORDINATOR_ID, AuthError
from catopt_dsl.sync.run import DistributedSolve
from catopt_dsl.sync.transport import FaultPlan, FaultyTransport

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TENANTS = ("tenant_a", "tenant_b", "tenant_c", "tenant_d")
KEYS = {name: Identity.from_seed(bytes([i + 1]) * 32) for i, name in enumerate(TENANTS)}
COORD = Identity.from_seed(bytes([99]) * 32)
MALLORY = Identity.from_seed(bytes([66]) * 32)  # not a member of the plan
OPTIONS = SolveOptions(max_iter=400)


@cache
def fleet() -> IRPlan:
    return load_plan(EXAMPLES / "gpu_fleet.cat")


def run_auth(revoked: frozenset[str] = frozenset()) -> RunAuth:
    owners = Owners({n: k.did for n, k in KEYS.items()})
    return RunAuth(owners, {k.did: k for k in KEYS.values()}, COORD, revoked)


# ---------------------------------------------------------------------------------------------
# The envelope
# ---------------------------------------------------------------------------------------------


def _delta(sender: int = 1, seq: int = 1, epoch: int = 4, value: float = 1.0, name: str = "tenant_a") -> bytes:
    msg = Delta(Envelope(sender, epoch, seq, 3, bytes(32)), {f"x:{name}": np.full(3, value)}, {f"f:{name}": 0.5})
    return encode_message(msg)


def test_envelope_round_trip_is_deterministic_and_checked() -> None:
    frame = _delta()
    sealed = seal_frame(frame, KEYS["tenant_a"])
    assert sealed == seal_frame(frame, KEYS["tenant_a"])  # Ed25519 is deterministic: retransmits are identical
    s = unseal(sealed)
    assert s.signer == KEYS["tenant_a"].did and s.frame == frame and s.verify()
    assert len(sealed) == len(frame) + 12 + len(s.signer) + 64 + 4

    cases: list[tuple[bytes, str]] = [
        (frame, "Unsigned"),
        (sealed[:40], "MalformedEnvelope"),
        (sealed[:-1] + bytes([sealed[-1] ^ 1]), "ChecksumError"),
        (sealed[:100] + bytes([sealed[100] ^ 1]) + sealed[101:], "ChecksumError"),
    ]
    for data, reason in cases:
        with pytest.raises(AuthError) as exc:
            unseal(data)
        assert exc.value.reason == reason


def _forge(frame: bytes, claimed: Identity, signer: Identity) -> bytes:
    """An envelope claiming ``claimed`` but signed by ``signer`` (CRC made consistent)."""
    honest = seal_frame(frame, claimed)
    s = unseal(honest)
    body = s.signed + signer.sign(SIGN_CONTEXT, s.signed)
    import crc32c

    return body + crc32c.crc32c(body).to_bytes(4, "little")


def _recrc(body: bytes) -> bytes:
    import crc32c

    return body + crc32c.crc32c(body).to_bytes(4, "little")


def test_coordinator_checks_one_by_one() -> None:
    a, b = KEYS["tenant_a"], KEYS["tenant_b"]
    auth = CoordinatorAuth(COORD, {1: a.did, 2: b.did}, Owners({"tenant_a": a.did, "tenant_b": b.did}),
                           reports_for=lambda m: [k.split(":", 1)[1] for k in getattr(m, "contributions", {})])

    def check(data: bytes) -> None:
        frame, token = auth.open(data)
        auth.admit(token, decode_message(frame))

    def refused(data: bytes) -> str:
        with pytest.raises(AuthError) as exc:
            check(data)
        return exc.value.reason

    check(seal_frame(_delta(seq=1), a))
    check(seal_frame(_delta(seq=1), a))  # the newest frame again: a retransmission, passed on
    check(seal_frame(_delta(seq=2), a))
    assert refused(seal_frame(_delta(seq=1), a)) == "Replay"  # an older frame again
    assert refused(seal_frame(_delta(seq=2, value=9.0), a)) == "Replay"  # same (epoch, seq), other bytes
    assert refused(seal_frame(_delta(seq=3, epoch=3), a)) == "StaleEpoch"
    check(seal_frame(_delta(seq=1, epoch=5), a))  # a new admission starts a new epoch at seq 1
    assert refused(_forge(_delta(seq=2, epoch=5), a, MALLORY)) == "BadSignature"
    assert refused(_forge(_delta(seq=2, epoch=5), b, a)) == "BadSignature"  # DID swapped for another member's
    assert refused(seal_frame(_delta(seq=2, epoch=5), MALLORY)) == "UnknownDid"
    assert refused(seal_frame(_delta(sender=1, seq=2, epoch=5), b)) == "WrongTenant"  # b speaks as a's node
    assert refused(seal_frame(_delta(sender=2, seq=1, name="tenant_a"), b)) == "WrongTenant"  # b reports for a
    auth.revoke(b.did)
    assert refused(seal_frame(_delta(sender=2, seq=1, name="tenant_b"), b)) == "RemovedMember"
    assert refused(_delta()) == "Unsigned"
    # members sign: a MAC'd frame from a member is refused even with the right pair key
    assert refused(seal_frame(_delta(seq=9, epoch=5), a, pair_key(a, COORD.did))) == "BadSignature"


def test_nodes_accept_only_the_coordinators_signed_or_paired_frames() -> None:
    coord, nodes = run_auth().bind({1: ("tenant_a",), 2: ("tenant_b",)})
    a, b = KEYS["tenant_a"], KEYS["tenant_b"]
    assert pair_key(a, COORD.did) == pair_key(COORD, a.did) != pair_key(b, COORD.did)
    ack = encode_message(Ack(Envelope(COORDINATOR_ID, 4, 7, 3), 2, 4))
    sealed = coord.seal(ack, 1)  # unicast: MAC'd with tenant_a's pair key...
    assert unseal(sealed).alg == 2 and len(sealed) < len(coord.seal(ack)) and coord.seal(ack, 1) == sealed
    frame, token = nodes[1].open(sealed)  # ...which node 1 checks
    nodes[1].admit(token, decode_message(frame))
    for nid, bad, reason in (
        (2, sealed, "BadSignature"),  # node 2 holds another pair key
        (2, seal_frame(_delta(), b), "UnknownDid"),  # a member's frame
        (2, _forge(ack, COORD, b), "BadSignature"),  # the coordinator's DID, b's signature
        (1, seal_frame(ack, COORD, pair_key(b, COORD.did)), "BadSignature"),  # b MACs to a "as the coordinator"
        (2, ack, "Unsigned"),
    ):
        with pytest.raises(AuthError) as exc:
            nodes[nid].open(bad)
        assert exc.value.reason == reason
    broadcast = coord.seal(encode_message(Join(Envelope(COORDINATOR_ID, 0, 1, 0), "x", 0)))  # no dst: signed
    for nid in (1, 2):
        frame, token = nodes[nid].open(broadcast)
        nodes[nid].admit(token, decode_message(frame))


def test_configuration_errors() -> None:
    a = KEYS["tenant_a"]
    with pytest.raises(AuthConfigError, match="belongs to"):
        RunAuth(Owners({"tenant_a": a.did}), {KEYS["tenant_b"].did: a}, COORD)
    ra = RunAuth(Owners({"tenant_a": a.did}), {a.did: a}, COORD)
    with pytest.raises(AuthConfigError, match="has no owner"):
        ra.bind({1: ("tenant_a",), 2: ("tenant_b",)})
    two = RunAuth(Owners({"tenant_a": a.did, "tenant_b": KEYS["tenant_b"].did}), {a.did: a}, COORD)
    with pytest.raises(AuthConfigError, match="2 owners"):
        two.bind({1: ("tenant_a", "tenant_b")})
    with pytest.raises(AuthConfigError, match="no key"):
        two.bind({1: ("tenant_a",), 2: ("tenant_b",)})
    assert two.split({1: ("tenant_a", "tenant_b"), 2: ("tenant_a",)}) == {
        1: ("tenant_a",), 2: ("tenant_b",), 3: ("tenant_a",)}


# ---------------------------------------------------------------------------------------------
# Honest runs
# ---------------------------------------------------------------------------------------------


@cache
def baseline(leave: bool = False) -> tuple[SolveResult, int]:
    run = DistributedSolve(fleet(), OPTIONS, auth=run_auth(), leave_at={4: 6} if leave else None)
    result = run.run()
    # tenant_d's Leave cuts the plan: the remaining plan's optimum, marked as such
    assert result.status == ("member_lost" if leave else "optimal")
    assert run.trace.coordinator_stats.rejected == 0
    return result, run.trace.coordinator_stats.applied


def same_result(got: SolveResult, ref: SolveResult) -> None:
    assert got.status == ref.status
    assert got.objective is not None and ref.objective is not None
    assert abs(got.objective - ref.objective) <= 1e-9
    for name, values in ref.objects.items():
        for var, arr in values.items():
            assert np.array_equal(got.objects[name][var], arr), (name, var)


def test_signing_changes_no_iterate() -> None:
    plain = DistributedSolve(fleet(), OPTIONS).run()
    signed, _ = baseline()
    same_result(signed, plain)
    assert signed.iterations == plain.iterations


@pytest.mark.parametrize("seed", [0, 1])
def test_honest_frames_survive_faults(seed: int) -> None:
    faults = FaultPlan(drop=0.15, duplicate=0.15, reorder=0.3, delay=0.15, corrupt=0.05)
    run = DistributedSolve(fleet(), OPTIONS, faults=faults, seed=seed, auth=run_auth())
    result = run.run()
    same_result(result, baseline()[0])
    errors = run.trace.coordinator_stats.errors
    assert errors.get("ChecksumError", 0) > 0  # corruption is damage, caught by the CRC...
    assert not {"BadSignature", "UnknownDid", "WrongTenant", "RemovedMember", "Unsigned"} & set(errors)  # ...not forgery


# ---------------------------------------------------------------------------------------------
# The attack suite
# ---------------------------------------------------------------------------------------------

Inject = Callable[["Attacker", int], list[tuple[int, int, bytes]]]


class Attacker(FaultyTransport):
    """A perfect transport that records every frame and lets attacks inject frames at given ticks."""

    def __init__(self, attacks: dict[int, list[Inject]]) -> None:
        super().__init__(FaultPlan(), 0)
        self.attacks = attacks
        self.seen: list[tuple[int, int, int, bytes]] = []  # (tick, src, dst, bytes)

    def send(self, src: int, dst: int, data: bytes, now: int) -> None:
        self.seen.append((now, src, dst, data))
        super().send(src, dst, data, now)

    def deliver(self, now: int) -> list[tuple[int, int, bytes]]:
        injected = [f for attack in self.attacks.get(now, []) for f in attack(self, now)]
        return injected + super().deliver(now)  # the attacker's frames arrive first

    def deltas_from(self, node: int) -> list[tuple[Message, bytes]]:
        out = []
        for _t, src, dst, data in self.seen:
            if src == node and dst == COORDINATOR_ID:
                frame = unseal(data).frame if data[:4] == b"CATS" else data
                msg = decode_message(frame)
                if isinstance(msg, Delta):
                    out.append((msg, data))
        return out


def _spoof(msg: Message, **env: int) -> Delta:
    assert isinstance(msg, Delta)
    x = {k: np.asarray(v) * 0 + 50.0 for k, v in msg.contributions.items()}  # a harmful contribution
    return Delta(replace(msg.env, **env), x, dict(msg.residuals))


def forged_signature(at: Attacker, now: int) -> list[tuple[int, int, bytes]]:
    msg, data = at.deltas_from(1)[-1]
    s = unseal(data)
    evil = encode_message(_spoof(msg, seq=msg.env.seq + 1))
    body = s.signed[: len(s.signed) - len(s.frame) - 4] + len(evil).to_bytes(4, "little") + evil + s.signature
    return [(1, COORDINATOR_ID, _recrc(body))]  # the old signature on new contents


def swapped_key(at: Attacker, now: int) -> list[tuple[int, int, bytes]]:
    msg, _ = at.deltas_from(1)[-1]
    evil = encode_message(_spoof(msg, seq=msg.env.seq + 1))
    return [(1, COORDINATOR_ID, _forge(evil, KEYS["tenant_a"], MALLORY)),  # a's DID, Mallory's key
            (2, COORDINATOR_ID, _forge(evil, KEYS["tenant_b"], KEYS["tenant_a"]))]  # b's DID, a's key


def unknown_did(at: Attacker, now: int) -> list[tuple[int, int, bytes]]:
    msg, _ = at.deltas_from(1)[-1]
    return [(1, COORDINATOR_ID, seal_frame(encode_message(_spoof(msg, seq=msg.env.seq + 1)), MALLORY))]


def wrong_tenant(at: Attacker, now: int) -> list[tuple[int, int, bytes]]:
    msg_a, _ = at.deltas_from(1)[-1]
    msg_b, _ = at.deltas_from(2)[-1]
    as_node_1 = seal_frame(encode_message(_spoof(msg_a, seq=msg_a.env.seq + 1)), KEYS["tenant_b"])
    x = {"x:tenant_a": np.full(3, 50.0), **msg_b.contributions}
    for_a = Delta(replace(msg_b.env, seq=msg_b.env.seq + 1), x, dict(msg_b.residuals))
    return [(1, COORDINATOR_ID, as_node_1), (2, COORDINATOR_ID, seal_frame(encode_message(for_a), KEYS["tenant_b"]))]


def replay(at: Attacker, now: int) -> list[tuple[int, int, bytes]]:
    deltas = at.deltas_from(3)
    return [(3, COORDINATOR_ID, data) for _m, data in deltas[2:5]]  # older frames of the current epoch


def stale_epoch(at: Attacker, now: int) -> list[tuple[int, int, bytes]]:
    first_msg, first = at.deltas_from(1)[0]  # sent in the epoch of node 1's admission
    newest, _ = at.deltas_from(1)[-1]
    assert first_msg.env.epoch < newest.env.epoch
    insider = encode_message(_spoof(newest, epoch=first_msg.env.epoch, seq=newest.env.seq + 1))
    return [(1, COORDINATOR_ID, first), (1, COORDINATOR_ID, seal_frame(insider, KEYS["tenant_a"]))]


def other_plan(at: Attacker, now: int) -> list[tuple[int, int, bytes]]:
    msg, _ = at.deltas_from(2)[-1]
    evil = _spoof(msg, seq=msg.env.seq + 1)
    evil = Delta(replace(evil.env, spec_hash=b"\x42" * 32), evil.contributions, evil.residuals)
    return [(2, COORDINATOR_ID, seal_frame(encode_message(evil), KEYS["tenant_b"]))]


def unsigned(at: Attacker, now: int) -> list[tuple[int, int, bytes]]:
    msg, _ = at.deltas_from(3)[-1]
    return [(3, COORDINATOR_ID, encode_message(_spoof(msg, seq=msg.env.seq + 1)))]


def removed_member(at: Attacker, now: int) -> list[tuple[int, int, bytes]]:
    msg, _ = at.deltas_from(4)[-1]  # tenant_d left at round 6; its key keeps talking
    d = KEYS["tenant_d"]
    join = Join(Envelope(4, msg.env.epoch, 0, 0, msg.env.spec_hash), "tenant_d", 7)  # a new incarnation
    evil = _spoof(msg, seq=msg.env.seq + 2, epoch=msg.env.epoch + 9)
    return [(4, COORDINATOR_ID, seal_frame(encode_message(join), d)), (4, COORDINATOR_ID, seal_frame(encode_message(evil), d))]


ATTACKS: dict[str, tuple[Inject, set[str]]] = {
    "forged signature": (forged_signature, {"BadSignature"}),
    "swapped public key": (swapped_key, {"BadSignature"}),
    "unknown DID": (unknown_did, {"UnknownDid"}),
    "wrong-tenant report": (wrong_tenant, {"WrongTenant"}),
    "replay": (replay, {"Replay"}),
    "stale epoch": (stale_epoch, {"StaleEpoch"}),
    "other-plan frame": (other_plan, {"SpecHashMismatch"}),
    "unsigned frame": (unsigned, {"Unsigned"}),
    "removed member": (removed_member, {"RemovedMember"}),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_is_refused_counted_and_changes_nothing(name: str) -> None:
    attack, reasons = ATTACKS[name]
    leave = name == "removed member"
    ref, applied = baseline(leave)
    at = Attacker({t: [attack] for t in (24, 25, 61)})
    run = DistributedSolve(fleet(), OPTIONS, transport=at, auth=run_auth(), leave_at={4: 6} if leave else None)
    result = run.run()
    stats = run.trace.coordinator_stats
    assert set(stats.errors) == reasons, stats.errors
    assert stats.rejected == sum(stats.errors.values()) >= 3
    assert stats.applied == applied  # not one forged contribution applied
    same_result(result, ref)


def test_all_attacks_at_once() -> None:
    every = [a for name, (a, _r) in ATTACKS.items() if name != "removed member"]
    at = Attacker({24: every, 40: every, 61: every})
    run = DistributedSolve(fleet(), OPTIONS, transport=at, auth=run_auth())
    result = run.run()
    expected = set().union(*(r for name, (_a, r) in ATTACKS.items() if name != "removed member"))
    assert set(run.trace.coordinator_stats.errors) == expected
    same_result(result, baseline()[0])


def test_without_authentication_the_spoof_succeeds() -> None:
    """Control: the wrong-tenant spoof of node 1's next Delta, unsigned, against an unsigned run."""

    def spoof(at: Attacker, now: int) -> list[tuple[int, int, bytes]]:
        msg, _ = at.deltas_from(1)[-1]
        return [(1, COORDINATOR_ID, encode_message(_spoof(msg, seq=msg.env.seq + 1)))]

    clean = DistributedSolve(fleet(), OPTIONS).run()
    # At tick 24 node 1's next Delta is still in flight: the forged one with its seq lands first.
    run = DistributedSolve(fleet(), OPTIONS, transport=Attacker({24: [spoof], 25: [spoof]}))
    hit = run.run()
    assert run.trace.coordinator_stats.duplicates > 0  # node 1's honest Delta was taken as the duplicate
    assert run.trace.coordinator_stats.rejected == 0  # nothing noticed the forgery...
    assert clean.objective is not None and hit.objective is not None
    assert abs(hit.objective - clean.objective) > 1.0  # ...and the run ended somewhere else


def test_revoked_member_is_refused_from_the_start() -> None:
    d = KEYS["tenant_d"].did
    run = DistributedSolve(fleet(), OPTIONS, auth=run_auth(frozenset({d})))
    result = run.run()
    assert run.trace.coordinator_stats.errors.get("RemovedMember", 0) > 0
    assert 4 not in run.trace.members and set(result.objects) == {"tenant_a", "tenant_b", "tenant_c"}


def test_the_frame_layout_under_the_envelope_is_unchanged() -> None:
    frame = _delta()
    assert decode_frame(unseal(seal_frame(frame, KEYS["tenant_c"])).frame).header.sender == 1


def test_a_restarted_member_is_accepted_and_its_zombie_is_fenced() -> None:
    """tenant_b's process dies at round 10 and a new one starts 10 ticks later: its Join and signed
    Deltas (a new incarnation, the same DID) are accepted, while the old incarnation's frames --
    replayed byte for byte, or new ones a zombie signs with the same key -- are refused or fenced.
    The iterates are those of a run without the crash."""

    def zombie(at: Attacker, now: int) -> list[tuple[int, int, bytes]]:
        old = [(m, d) for m, d in at.deltas_from(2) if m.env.epoch < at.new_epoch]
        msg, _ = old[-1]
        fresh = seal_frame(encode_message(_spoof(msg, seq=msg.env.seq + 1)), KEYS["tenant_b"])
        return [(2, COORDINATOR_ID, d) for _m, d in old] + [(2, COORDINATOR_ID, fresh)]

    at = Attacker({60: [zombie], 90: [zombie]})
    run = DistributedSolve(fleet(), OPTIONS, transport=at, auth=run_auth(),
                           faults=FaultPlan(crash_at={2: 10}, restart_after={2: 10}))
    at.new_epoch = 10**9  # set once the restart is known (below): until then every frame counts as old
    original = run.protocol._on_join

    def note(msg):  # type: ignore[no-untyped-def]
        out = original(msg)
        if msg.env.sender == 2 and run.protocol.incarnations.get(2) == 2:
            at.new_epoch = min(at.new_epoch, run.protocol.epoch)
        return out

    run.protocol._on_join = note  # type: ignore[method-assign]
    result = run.run()
    stats = run.trace.coordinator_stats
    assert run.trace.incarnations[2] == 2 and stats.restarts == 1 and at.new_epoch < 10**9
    assert stats.errors.get("StaleEpoch", 0) + stats.errors.get("Replay", 0) + stats.fenced >= 2
    assert not {"BadSignature", "UnknownDid", "WrongTenant", "RemovedMember"} & set(stats.errors)
    same_result(result, baseline()[0])
    assert result.iterations == baseline()[0].iterations
