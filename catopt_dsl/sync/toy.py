"""A toy application for the protocol: nodes holding numbers, a coordinator averaging them.

Each node moves its estimate ``x`` halfway to its number every step and sends the *increment*;
the coordinator adds the increments per member and broadcasts the mean over current members.
Increments make the toy a sharp test of the protocol: a Delta applied twice, or lost, leaves the
coordinator's sum different from the node's ``x`` for ever, so ``z`` only reaches the exact
average if every Delta is applied exactly once. Snapshots carry the coordinator's sum back to a
node that (re)joins or lost its place.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from catopt_dsl.sync.protocol import BroadcastState, BroadcastView, NodeOutput, RoundInput


class AveragingNode:
    """Holds ``value``; converges its contribution towards it."""

    def __init__(self, value: float, rate: float = 0.5):
        self.value = float(value)
        self.rate = rate
        self.x = 0.0

    def step(self, view: BroadcastView) -> NodeOutput:
        d = self.rate * (self.value - self.x)
        self.x += d
        return NodeOutput({"inc": np.array([d])}, {"gap": abs(self.value - self.x)})

    def restore(self, state: Mapping[str, np.ndarray]) -> None:
        self.x = float(np.asarray(state["s"]).reshape(-1)[0]) if "s" in state else 0.0


class AveragingCoordinator:
    """Sums increments per member; z = mean over the current members."""

    def __init__(self) -> None:
        self.sums: dict[int, float] = {}
        self.history: list[tuple[int, tuple[int, ...], float]] = []  # (round, members, z)

    def initial(self) -> BroadcastState:
        return BroadcastState({"z": np.zeros(1)}, 1.0)

    def member_joined(self, member: int, name: str) -> None:
        self.sums[member] = 0.0

    def member_left(self, member: int) -> None:
        self.sums.pop(member, None)  # its share is released

    def snapshot_for(self, member: int) -> dict[str, np.ndarray]:
        return {"s": np.array([self.sums.get(member, 0.0)])}

    def update(self, inp: RoundInput) -> BroadcastState:
        for member in sorted(inp.new):
            for c in inp.new[member]:
                self.sums[member] = self.sums.get(member, 0.0) + float(c.arrays["inc"][0])
        z = float(np.mean([self.sums.get(m, 0.0) for m in inp.members])) if inp.members else 0.0
        self.history.append((inp.round, inp.members, z))
        return BroadcastState({"z": np.array([z])}, 1.0)
