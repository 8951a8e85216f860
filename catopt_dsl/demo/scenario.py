"""The fleet scenario: domains, tenants, jobs and the hour-by-hour events (pure data, seeded).

Three domains each own one accelerator class: a cloud region with CUDA GPUs, an on-prem cluster
with ROCm GPUs and an edge pool of CPUs. A domain's capacity is its node count times the
accelerator-hours one node gives in an hour. Twelve tenants, each homed in one domain (its local
problem runs there: ``on cuda``/``on rocm``/``on cpu``), bid for accelerator-hours of every class;
their training jobs arrive, run and finish, each with an amount of work and a deadline.

Everything here is data derived from one seed, so the same seed gives the same run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CLASSES", "Domain", "Event", "Job", "Scenario", "TenantSpec", "default_scenario"]

#: accelerator classes, in the order of every per-class vector (x, demand, value, capacity)
CLASSES: tuple[str, ...] = ("cuda", "rocm", "cpu")


@dataclass(frozen=True)
class Domain:
    name: str
    accel: str  # the class of CLASSES its nodes provide (also its tenants' platform)
    nodes: int
    hours_per_node: float  # accelerator-hours one node provides per simulated hour
    speed: float  # work (CUDA-hour equivalents) one accelerator-hour of this class does


@dataclass(frozen=True)
class Job:
    tenant: str
    name: str
    arrival: int  # the hour it is submitted
    work: float  # CUDA-hour equivalents
    deadline: int  # the hour by whose end it should be done


@dataclass(frozen=True)
class TenantSpec:
    name: str
    home: str  # domain name
    value: tuple[float, float, float]  # base value of one accelerator-hour per class
    penalty: float  # congestion penalty (concave utility)
    max_rate: float  # accelerator-hours per class a tenant's jobs can use in one hour


@dataclass(frozen=True)
class Event:
    """A scheduled change to the fleet (besides jobs arriving and finishing)."""

    hour: int
    kind: str  # "lose_nodes" | "schema_upgrade" | "dark" | "back"
    domain: str = ""
    nodes: int = 0  # lose_nodes: how many nodes go


@dataclass(frozen=True)
class Scenario:
    domains: tuple[Domain, ...]
    tenants: tuple[TenantSpec, ...]
    jobs: tuple[Job, ...]
    events: tuple[Event, ...]
    seed: int

    def domain(self, name: str) -> Domain:
        return next(d for d in self.domains if d.name == name)

    def events_at(self, hour: int) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.hour == hour)


def default_scenario(seed: int = 7) -> Scenario:
    """The demo's fleet: 3 domains, 12 tenants, 1-3 jobs each, and the scheduled events.

    The day is the same however many hours a run covers (a short run is a prefix of the full
    one). Events: at hour 6 the on-prem cluster loses 2 of its 6
    nodes; at hour 9 the usage schema is upgraded from v1 to v2; at hour 14 the edge goes dark
    (mid-run: the protocol notices), and at hour 16 it is back.
    """
    rng = np.random.default_rng(seed)
    domains = (
        Domain("cloud", "cuda", nodes=8, hours_per_node=4.0, speed=1.0),
        Domain("onprem", "rocm", nodes=6, hours_per_node=4.0, speed=0.8),
        Domain("edge", "cpu", nodes=16, hours_per_node=1.0, speed=0.25),
    )
    names = ("acme", "borealis", "cobalt", "dyad", "ember", "fjord", "gamut", "helix", "iris", "juno", "kite",
             "lumen")
    tenants: list[TenantSpec] = []
    jobs: list[Job] = []
    last_arrival = 20
    for i, name in enumerate(names):
        home = domains[i % 3]
        value = rng.uniform(1.0, 4.0, 3)
        value[CLASSES.index(home.accel)] *= 1.5  # data locality: a tenant prefers its home class
        if i % 4 == 1:
            value[1] *= 0.3  # a CUDA-only framework: ROCm hours are worth little to this tenant
        tenants.append(TenantSpec(f"t_{name}", home.name, (float(value[0]), float(value[1]), float(value[2])),
                                  penalty=float(rng.choice([0.05, 0.1, 0.2])), max_rate=float(rng.uniform(6, 12))))
        for j in range(int(rng.integers(1, 4))):
            arrival = 0 if (i < 6 and j == 0) else int(rng.integers(0, last_arrival))
            work = float(rng.uniform(40.0, 160.0))
            jobs.append(Job(f"t_{name}", f"t_{name}/job{j}", arrival, work, arrival + int(rng.integers(6, 16))))
    # A long pre-training run keeps the fleet busy all day (a plan always has a tenant).
    jobs.append(Job("t_acme", "t_acme/pretrain", 0, 2000.0, 30))
    events = (
        Event(6, "lose_nodes", "onprem", nodes=2),
        Event(9, "schema_upgrade"),
        Event(14, "dark", "edge"),
        Event(16, "back", "edge"),
    )
    return Scenario(domains, tuple(tenants), tuple(sorted(jobs, key=lambda j: (j.arrival, j.name))), events, seed)
