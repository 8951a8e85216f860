"""What a distributed run reports besides its numbers: membership, protocol counters, per-round metrics.

:class:`RunReport` is attached to a distributed :class:`~catopt_dsl.solver.result.SolveResult`
(``result.run``) and printed by ``solve --json`` as its ``membership`` object (the public contract,
README "The `solve --json` contract"). :func:`prometheus_text` writes it in the Prometheus text
exposition format (``solve --metrics FILE``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RoundMetric", "RunReport", "prometheus_text"]


@dataclass(frozen=True)
class RoundMetric:
    """One closed round, as the driver saw it."""

    round: int  # the round that closed
    tick: int  # the driver tick it closed at
    latency_s: float  # wall-clock seconds since the previous close (or the start of the run)
    retransmits: int  # coordinator retransmissions while the round was open
    epoch: int  # membership epoch after the close
    members: int  # members when it closed
    dropped: int  # members dropped so far (cumulative)
    fenced: int  # frames fenced so far (cumulative)

    def to_json(self) -> dict[str, Any]:
        return {
            "dropped": self.dropped,
            "epoch": self.epoch,
            "fenced": self.fenced,
            "latency_s": self.latency_s,
            "members": self.members,
            "retransmits": self.retransmits,
            "round": self.round,
            "tick": self.tick,
        }


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[k]


@dataclass(frozen=True)
class RunReport:
    """Membership and counters of one distributed run.

    ``required``: the objects the plan asked for; ``members``: the objects in the plan the result
    solves (those that were members at the end); ``lost``: required objects that were not;
    ``remaining_status``: with status ``member_lost``, what the remaining plan reached (``optimal``
    means the reported point is the optimum of the plan *without* ``lost``). ``incarnations``:
    node id -> newest incarnation the coordinator assigned; ``events``: the membership changes
    (tick, round, epoch, kind, node, incarnation); ``startup_s``: wall-clock seconds of each start-up
    phase (Ray); ``rounds``: per-round metrics. ``signed``: whether every frame was signed
    (:mod:`catopt_dsl.sync.auth`); ``rejected_by``: the ``rejected`` frames by reason (``BadSignature``,
    ``WrongTenant``, ``Replay``, ``StaleEpoch``, ``SpecHashMismatch``, ``RemovedMember``, ...).
    """

    mode: str  # "synchronous" | "asynchronous"
    required: tuple[str, ...]
    members: tuple[str, ...]
    lost: tuple[str, ...]
    epoch: int
    ticks: int
    dropped: int
    fenced: int
    retransmits: int
    duplicates: int
    rejected: int
    restarts: int
    incarnations: Mapping[int, int] = field(default_factory=dict)
    remaining_status: str | None = None
    events: tuple[tuple[int, int, int, str, int, int], ...] = ()
    startup_s: Mapping[str, float] = field(default_factory=dict)
    rounds: tuple[RoundMetric, ...] = ()
    signed: bool = False
    rejected_by: Mapping[str, int] = field(default_factory=dict)

    def latency(self) -> dict[str, float | None]:
        lat = [r.latency_s for r in self.rounds]
        return {
            "p50": _quantile(lat, 0.5),
            "p99": _quantile(lat, 0.99),
            "max": max(lat) if lat else None,
            "total": float(sum(lat)),
        }

    def to_json(self) -> dict[str, Any]:
        """The ``membership`` object of ``solve --json`` (keys sorted by the caller's dump)."""
        return {
            "dropped": self.dropped,
            "duplicates": self.duplicates,
            "epoch": self.epoch,
            "events": [
                {"epoch": e, "incarnation": inc, "kind": kind, "node": node, "round": rnd, "tick": tick}
                for tick, rnd, e, kind, node, inc in self.events
            ],
            "fenced": self.fenced,
            "incarnations": {str(k): int(v) for k, v in sorted(self.incarnations.items())},
            "lost": list(self.lost),
            "members": list(self.members),
            "mode": self.mode,
            "rejected": self.rejected,
            "rejected_by": {k: int(v) for k, v in sorted(self.rejected_by.items())},
            "remaining_status": self.remaining_status,
            "required": list(self.required),
            "restarts": self.restarts,
            "retransmits": self.retransmits,
            "round_latency_s": self.latency(),
            "signed": self.signed,
            "startup_s": {k: float(v) for k, v in self.startup_s.items()},
            "ticks": self.ticks,
        }


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(report: RunReport, status: str, iterations: int | None, solve_time_s: float) -> str:
    """The run in the Prometheus text exposition format (version 0.0.4)."""
    lines: list[str] = []

    def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            v = "NaN" if math.isnan(value) else ("+Inf" if value == math.inf else repr(float(value)))
            lines.append(f"{name}{labels} {v}")

    metric("catopt_solve_info", "gauge", "The solve's final status (value 1).",
           [(f'{{status="{_label(status)}",mode="{_label(report.mode)}"}}', 1.0)])
    metric("catopt_solve_iterations", "gauge", "ADMM iterations (closed rounds).", [("", float(iterations or 0))])
    metric("catopt_solve_seconds", "gauge", "Wall-clock seconds of the solve.", [("", float(solve_time_s))])
    metric("catopt_membership_epoch", "gauge", "Membership epoch at the end.", [("", float(report.epoch))])
    metric("catopt_members", "gauge", "Objects in the final plan.", [("", float(len(report.members)))])
    metric("catopt_members_lost", "gauge", "Required objects missing from the final plan.", [("", float(len(report.lost)))])
    for name, value, help_ in (
        ("catopt_members_dropped_total", report.dropped, "Members the coordinator dropped (silent or stale)."),
        ("catopt_frames_fenced_total", report.fenced, "Frames fenced as coming from an earlier admission."),
        ("catopt_retransmits_total", report.retransmits, "Broadcasts the coordinator resent."),
        ("catopt_frames_duplicate_total", report.duplicates, "Duplicate frames acknowledged, not applied."),
        ("catopt_frames_rejected_total", report.rejected, "Frames rejected (undecodable, other plan, refused)."),
        ("catopt_member_restarts_total", report.restarts, "Members admitted again with a new process."),
    ):
        metric(name, "counter", help_, [("", float(value))])
    if report.rejected_by:
        metric("catopt_frames_rejected_by_reason_total", "counter", "Frames rejected, by reason.",
               [(f'{{reason="{_label(k)}"}}', float(v)) for k, v in sorted(report.rejected_by.items())])
    epochs = sum(1 for a, b in zip(report.rounds, report.rounds[1:]) if a.epoch != b.epoch)
    metric("catopt_epoch_changes_total", "counter", "Rounds after which the membership epoch had moved.",
           [("", float(epochs))])
    # round latency as a histogram (seconds)
    bounds = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
    lat = [r.latency_s for r in report.rounds]
    lines.append("# HELP catopt_round_latency_seconds Wall-clock seconds between round closes.")
    lines.append("# TYPE catopt_round_latency_seconds histogram")
    for b in bounds:
        lines.append(f'catopt_round_latency_seconds_bucket{{le="{b}"}} {sum(1 for v in lat if v <= b)}')
    lines.append(f'catopt_round_latency_seconds_bucket{{le="+Inf"}} {len(lat)}')
    lines.append(f"catopt_round_latency_seconds_sum {float(sum(lat))!r}")
    lines.append(f"catopt_round_latency_seconds_count {len(lat)}")
    if report.startup_s:
        metric("catopt_startup_phase_seconds", "gauge", "Wall-clock seconds of each start-up phase.",
               [(f'{{phase="{_label(k)}"}}', float(v)) for k, v in report.startup_s.items()])
    return "\n".join(lines) + "\n"
