"""The distributed-run options of ``catoptc solve``, and what the command needs to run them cleanly.

``solve`` takes these through :func:`run_options` (one decorator, so the command stays short):
protocol settings (``--quorum``, ``--staleness``, ``--round-timeout``, ``--member-timeout``,
``--join-timeout``, ``--rejoin-timeout``), the membership policy (``--min-members``), checkpoints
(``--checkpoint FILE --every N``, ``--resume FILE``), rehearsed failures (``--fault``), Ray's
deadlines (``--node-timeout``, ``--start-timeout``, ``--max-restarts``), observability
(``--log-format``, ``--log-level``, ``--metrics FILE``). :func:`build_run_options` checks them
against the backend (usage errors, exit 2) and returns the keyword arguments of a
:class:`~catopt_dsl.runtime.backends.RunOptions` (built by the CLI: the runtime is a later stage).

Also here: :func:`configure_logging` (``logging`` to stderr, JSON lines with ``--log-format
json``), :func:`stdout_to_stderr` (while a ``--json`` solve runs, anything a library prints --
Ray's ``(raylet)`` lines -- goes to stderr, so stdout holds exactly one JSON document) and
:func:`write_metrics` (the Prometheus text file).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = [
    "JsonLogFormatter",
    "build_run_options",
    "configure_logging",
    "run_options",
    "stdout_to_stderr",
    "write_metrics",
]

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--quorum", type=click.FloatRange(0.0, 1.0, min_open=True), default=None,
                 help="Distributed/Ray: fraction of members a round waits for (asynchronous ADMM below 1; default 1)."),
    click.option("--staleness", type=click.IntRange(0), default=None,
                 help="Distributed/Ray: oldest contribution, in rounds, a round may use (default 0; >= 1 with --quorum < 1)."),
    click.option("--round-timeout", type=click.IntRange(1), default=None, metavar="TICKS",
                 help="Distributed/Ray: close a round after this many ticks with any answer (asynchronous)."),
    click.option("--member-timeout", type=click.IntRange(1), default=None, metavar="TICKS",
                 help="Distributed/Ray: ticks a silent member is waited for before it is dropped (default 60)."),
    click.option("--join-timeout", type=click.IntRange(1), default=None, metavar="TICKS",
                 help="Distributed/Ray: ticks round 0 waits for every member (default: the member timeout)."),
    click.option("--rejoin-timeout", type=click.IntRange(1), default=None, metavar="TICKS",
                 help="Distributed/Ray: ticks a lost member has to come back (default: the member timeout)."),
    click.option("--min-members", type=click.IntRange(1), default=None, metavar="N",
                 help="Distributed/Ray: once a lost member's window closed, go on only with at least N objects "
                 "(default 1); the status is member_lost either way (see docs/statuses.md)."),
    click.option("--checkpoint", "checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="Distributed/Ray: write the coordinator state to FILE atomically every --every iterations."),
    click.option("--every", "checkpoint_every", type=click.IntRange(1), default=None, metavar="N",
                 help="Iterations between checkpoints (default 10; needs --checkpoint)."),
    click.option("--resume", "resume", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                 help="Distributed/Ray: continue the run a checkpoint FILE was written for."),
    click.option("--fault", "faults", multiple=True, metavar="SPEC",
                 help="Distributed/Ray: rehearse a failure, e.g. crash=tenant_b@20, restart=tenant_b+80, "
                 "hang=tenant_c@10, lag=tenant_a+8, drop=0.2 (catopt_dsl/sync/faults.py)."),
    click.option("--node-timeout", type=click.FloatRange(min=0.0, min_open=True), default=None, metavar="SECONDS",
                 help="Ray: seconds a node actor may take per call before it counts as hung (default 300)."),
    click.option("--start-timeout", type=click.FloatRange(min=0.0, min_open=True), default=None, metavar="SECONDS",
                 help="Ray: seconds a node actor may take to start (default 300)."),
    click.option("--max-restarts", type=click.IntRange(0), default=None, metavar="N",
                 help="Ray: replacements per node actor after a failure (default 2)."),
    click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
                 help="Log records on stderr as text or as JSON lines."),
    click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default=None,
                 help="Log level (default: info with --log-format json, else warning)."),
    click.option("--metrics", "metrics_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="Distributed/Ray: write the run's metrics to FILE in the Prometheus text format."),
]

#: option name -> the flag users typed (for messages)
_FLAGS = {
    "quorum": "--quorum", "staleness": "--staleness", "round_timeout": "--round-timeout",
    "member_timeout": "--member-timeout", "join_timeout": "--join-timeout", "rejoin_timeout": "--rejoin-timeout",
    "min_members": "--min-members", "checkpoint": "--checkpoint", "checkpoint_every": "--every",
    "resume": "--resume", "faults": "--fault", "node_timeout": "--node-timeout", "start_timeout": "--start-timeout",
    "max_restarts": "--max-restarts", "metrics_path": "--metrics",
}
_RAY_ONLY = ("node_timeout", "start_timeout", "max_restarts")
_PROTOCOL = tuple(k for k in _FLAGS if k not in _RAY_ONLY)

#: every parameter :func:`run_options` adds to the command
PARAMS = (*_FLAGS, "log_format", "log_level")


def run_options(f: F) -> F:
    """Add the distributed-run options to a click command (they arrive as keyword arguments)."""
    for option in reversed(_OPTIONS):
        f = option(f)
    return f


def build_run_options(params: dict[str, Any], backend: str, phase: Callable[[str], None] | None) -> dict[str, Any]:
    """Check the options against ``backend``; the keyword arguments of ``RunOptions`` (``UsageError`` else)."""
    given = [k for k in _FLAGS if params.get(k) not in (None, ())]
    protocol = backend in ("distributed", "ray")
    if given and not protocol:
        flags = ", ".join(_FLAGS[k] for k in given)
        raise click.UsageError(f"{flags} need(s) --backend distributed or --backend ray (the delta-sync protocol runs there)")
    ray_only = [k for k in given if k in _RAY_ONLY]
    if ray_only and backend != "ray":
        raise click.UsageError(f"{', '.join(_FLAGS[k] for k in ray_only)} only apply to --backend ray")
    if params.get("checkpoint_every") is not None and params.get("checkpoint") is None:
        raise click.UsageError("--every sets how often --checkpoint writes: give --checkpoint FILE too")
    if not protocol:
        return {"phase": phase}
    from catopt_dsl.sync.protocol import SyncSettings

    if params.get("quorum") is not None and params["quorum"] < 1.0 and not params.get("staleness"):
        raise click.UsageError("--quorum below 1 needs --staleness 1 or more (a round then uses contributions "
                               "up to that many rounds old)")
    kwargs: dict[str, Any] = {}
    for name, key in (("quorum", "quorum"), ("staleness", "max_staleness"), ("round_timeout", "round_timeout"),
                      ("member_timeout", "member_timeout"), ("join_timeout", "join_timeout"),
                      ("rejoin_timeout", "rejoin_timeout")):
        if params.get(name) is not None:
            kwargs[key] = params[name]
    try:
        settings = SyncSettings(**kwargs)
    except ValueError as exc:
        raise click.UsageError(f"protocol settings: {exc}") from None
    resume = None
    if params.get("resume") is not None:
        from catopt_dsl.sync.checkpoint import CheckpointError, read_checkpoint

        try:
            resume = read_checkpoint(params["resume"])
        except CheckpointError as exc:
            raise click.UsageError(str(exc)) from None
    checkpoint = params.get("checkpoint")
    if checkpoint is not None and not (checkpoint.parent if str(checkpoint.parent) else Path(".")).is_dir():
        raise click.UsageError(f"--checkpoint {checkpoint}: the folder {checkpoint.parent} does not exist")
    if checkpoint is not None and checkpoint.exists():
        from catopt_dsl.sync.checkpoint import is_checkpoint

        if checkpoint.is_dir() or not is_checkpoint(checkpoint):
            raise click.UsageError(f"--checkpoint {checkpoint}: the file exists and is not a catoptc checkpoint; "
                                   "refusing to overwrite it")
    return {
        "settings": settings if kwargs else None,
        "min_members": params.get("min_members") or 1,
        "checkpoint": checkpoint,
        "checkpoint_every": params.get("checkpoint_every") or 10,
        "resume": resume,
        "fault_specs": tuple(params.get("faults") or ()),
        "phase": phase,
        "call_timeout_s": params.get("node_timeout"),
        "start_timeout_s": params.get("start_timeout"),
        "max_restarts": params.get("max_restarts"),
    }


# ---------------------------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------------------------

_STANDARD = set(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {"message", "asctime"}


class JsonLogFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the record's ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, allow_nan=False, sort_keys=False)


def configure_logging(fmt: str, level: str | None) -> Callable[[], None]:
    """Send ``catopt_dsl``'s log records to stderr (text or JSON lines) until the returned
    function is called (it restores the logger as it was)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("catoptc: %(levelname)s: %(message)s"))
    name = level or ("info" if fmt == "json" else "warning")
    logger = logging.getLogger("catopt_dsl")
    saved = logger.level
    logger.setLevel(getattr(logging, name.upper()))
    logger.addHandler(handler)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(saved)

    return undo


# ---------------------------------------------------------------------------------------------
# Output hygiene and metrics
# ---------------------------------------------------------------------------------------------


@contextmanager
def stdout_to_stderr(enabled: bool = True) -> Iterator[None]:
    """While active, file descriptor 1 and ``sys.stdout`` both write to stderr: whatever a library
    prints (Ray's driver prints worker errors, coloured) cannot corrupt a ``--json`` document."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (an embedded interpreter): the Python-level redirect still helps
        saved = -1
    try:
        if saved >= 0:
            os.dup2(2, 1)
        with redirect_stdout(sys.stderr):
            yield
    finally:
        try:
            sys.stderr.flush()
        finally:
            if saved >= 0:
                os.dup2(saved, 1)
                os.close(saved)


def write_metrics(path: Path, result: Any) -> str | None:
    """Write ``result.run`` in the Prometheus text format; the error text if it cannot be written."""
    from catopt_dsl.sync.report import RunReport, prometheus_text

    if not isinstance(result.run, RunReport):
        return "this backend reports no protocol metrics"
    text = prometheus_text(result.run, result.status, result.iterations, result.solve_time_s)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        return f"{path}: {exc.strerror or exc}"
    return None
