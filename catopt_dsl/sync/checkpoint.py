"""Coordinator checkpoints: write the state of a distributed run atomically, resume it after a crash.

A checkpoint holds everything the coordinator needs to go on where it was (``solve --checkpoint
FILE --every N`` writes one every N iterations, ``solve --resume FILE`` continues from it):

* the ADMM state: every object's newest x, the shared values z, the scaled duals u and the
  coupling copies (keyed by names, as :class:`~catopt_dsl.solver.result.SolverState`), rho, the
  last rows and multiplier estimate (rho's curvature secant) and the iteration count (so rho
  adaptation keeps its cadence and takes the decisions the uninterrupted run would have taken);
* the membership: the epoch, the coordinator's frame sequence number and the incarnation of
  every node, so a resumed coordinator fences anything a process of the interrupted run still
  sends (its epochs are below, its incarnations superseded); the objects missing at the time;
* the plan's spec hash (a checkpoint resumes only the plan it was written for).

What is not kept: the iteration history (a resumed result's ``history`` starts at the resume) and
the certificate tracker's memory (an infeasibility or unboundedness proof starts over).

The file is JSON (floats written with ``repr``, which round-trips every bit; non-finite state is
never checkpointed) and is replaced atomically: written to a temporary file in the same folder,
flushed, ``fsync``'d, renamed over the old one, and the folder ``fsync``'d, so a crash at any
moment leaves either the previous checkpoint or the new one, never a torn file.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from catopt_dsl.solver.result import SolverState

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "CheckpointError", "read_checkpoint", "write_checkpoint"]

CHECKPOINT_FORMAT = "catopt-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the plan (a one-line message)."""


@dataclass(frozen=True)
class Checkpoint:
    """One coordinator checkpoint (see the module docstring)."""

    spec_hash: str
    plan: str
    iteration: int
    state: SolverState
    epoch: int = 0
    seq: int = 0
    incarnations: Mapping[int, int] = field(default_factory=dict)
    missing: Mapping[str, str] = field(default_factory=dict)  # object -> why it was missing

    def to_json(self) -> dict[str, Any]:
        def arrays(d: Mapping[str, np.ndarray]) -> dict[str, list[float]]:
            return {k: [float(v) for v in np.asarray(a, dtype=np.float64).reshape(-1)] for k, a in sorted(d.items())}

        st = self.state
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "spec_hash": self.spec_hash,
            "plan": self.plan,
            "iteration": int(self.iteration),
            "state": {
                "rho": float(st.rho),
                "x": arrays(st.x),
                "z": arrays(st.z),
                "duals": arrays(st.duals),
                "targets": arrays(st.targets),
                "secant": {
                    k: {"a": arrays({"v": a})["v"], "yhat": arrays({"v": y})["v"]} for k, (a, y) in sorted(st.secant.items())
                },
            },
            "protocol": {
                "epoch": int(self.epoch),
                "seq": int(self.seq),
                "incarnations": {str(k): int(v) for k, v in sorted(self.incarnations.items())},
            },
            "missing": dict(sorted(self.missing.items())),
        }

    @staticmethod
    def from_json(doc: Any, where: str = "checkpoint") -> Checkpoint:
        try:
            if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
                raise CheckpointError(f"{where}: not a catoptc checkpoint")
            if doc.get("version") != CHECKPOINT_VERSION:
                raise CheckpointError(f"{where}: checkpoint version {doc.get('version')!r} is not supported")
            st = doc["state"]

            def arrays(d: Any) -> dict[str, np.ndarray]:
                out = {str(k): np.asarray(v, dtype=np.float64) for k, v in dict(d).items()}
                if not all(a.ndim == 1 and bool(np.isfinite(a).all()) for a in out.values()):
                    raise CheckpointError(f"{where}: state arrays must be flat lists of finite numbers")
                return out

            rho = float(st["rho"])
            if not (math.isfinite(rho) and rho > 0):
                raise CheckpointError(f"{where}: rho must be a positive number")
            secant = {}
            for k, pair in dict(st.get("secant", {})).items():
                got = arrays({"a": pair["a"], "yhat": pair["yhat"]})
                if got["a"].shape != got["yhat"].shape:
                    raise CheckpointError(f"{where}: the secant of {k!r} has rows and estimates of different sizes")
                secant[str(k)] = (got["a"], got["yhat"])
            state = SolverState(
                rho=rho,
                x=arrays(st["x"]),
                z=arrays(st["z"]),
                duals=arrays(st["duals"]),
                targets=arrays(st["targets"]),
                secant=secant,
            )
            proto = doc["protocol"]
            return Checkpoint(
                spec_hash=str(doc["spec_hash"]),
                plan=str(doc["plan"]),
                iteration=int(doc["iteration"]),
                state=state,
                epoch=int(proto["epoch"]),
                seq=int(proto["seq"]),
                incarnations={int(k): int(v) for k, v in dict(proto["incarnations"]).items()},
                missing={str(k): str(v) for k, v in dict(doc.get("missing", {})).items()},
            )
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: malformed checkpoint ({type(exc).__name__}: {exc})") from None

    def check_plan(self, spec_hash: str, where: str = "checkpoint") -> None:
        if self.spec_hash != spec_hash:
            raise CheckpointError(
                f"{where}: written for another plan (`{self.plan}`, spec hash {self.spec_hash[:12]}...); "
                "a checkpoint resumes only the plan it was written for"
            )


def write_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Replace ``path`` atomically with ``checkpoint`` (temporary file, fsync, rename, fsync folder)."""
    path = Path(path)
    data = json.dumps(checkpoint.to_json(), sort_keys=True, allow_nan=False).encode("utf-8") + b"\n"
    folder = path.parent if str(path.parent) else Path(".")
    tmp = folder / f".{path.name}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # the rename itself must survive a power loss: sync the folder entry
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def read_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint; :class:`CheckpointError` with a one-line message if it is not one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({exc})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not a checkpoint (invalid JSON at line {exc.lineno})") from None
    return Checkpoint.from_json(doc, str(path))


def is_checkpoint(path: Path) -> bool:
    """Whether ``path`` holds a readable checkpoint (so replacing it loses nothing the user wrote)."""
    try:
        read_checkpoint(path)
    except CheckpointError:
        return False
    return True
