"""`catoptc solve` for distributed runs: flags, JSON that is always JSON, logs, metrics, Ctrl-C."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from catopt_dsl.cli import main
from catopt_dsl.solver.result import SolveResult

ROOT = Path(__file__).resolve().parents[2]
FLEET = str(ROOT / "examples" / "gpu_fleet.cat")


def _invoke(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, ["solve", *args])
    return res.exit_code, res.stdout, res.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--quorum", "0.75", "--staleness", "2"], "need(s) --backend distributed or --backend ray"),
        (["--backend", "distributed", "--quorum", "0.5"], "--quorum below 1 needs --staleness"),
        (["--backend", "distributed", "--node-timeout", "5"], "only apply to --backend ray"),
        (["--backend", "distributed", "--every", "5"], "give --checkpoint FILE too"),
        (["--min-members", "2"], "--min-members need(s) --backend"),
        (["--backend", "centralized", "--fault", "drop=0.1"], "--fault need(s)"),
        (["--backend", "distributed", "--fault", "crash=nobody@3"], "no object `nobody`"),
        (["--backend", "distributed", "--fault", "crash=tenant_b"], "crash takes OBJECT@ROUND"),
        (["--backend", "distributed", "--fault", "drop=2"], "must be in [0, 1]"),
        (["--address", "127.0.0.1:6379"], "needs --backend ray"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], needle: str) -> None:
    code, out, err = _invoke(FLEET, *args)
    assert code == 2, (out, err)
    assert needle in err and "Traceback" not in err and out == ""


def test_json_carries_the_membership_and_the_counters() -> None:
    code, out, err = _invoke(FLEET, "--backend", "distributed", "--json", "--fault", "crash=tenant_b@5")
    assert code == 1
    doc = json.loads(out)
    m = doc["membership"]
    assert doc["status"] == "member_lost" and m["lost"] == ["tenant_b"] and m["remaining_status"] == "optimal"
    assert m["members"] == ["tenant_a", "tenant_c", "tenant_d"] and "tenant_b" not in doc["objects"]
    assert m["dropped"] == 1 and m["epoch"] == 5 and m["retransmits"] > 0 and m["fenced"] == 0
    assert m["incarnations"] == {"1": 1, "2": 1, "3": 1, "4": 1} and m["mode"] == "synchronous"
    assert [e["kind"] for e in m["events"]] == ["joined"] * 4 + ["dropped"]
    assert m["round_latency_s"]["p50"] is not None
    # a restart within the window: the whole plan, optimal, incarnation 2 for node 2
    code, out, _err = _invoke(FLEET, "--backend", "distributed", "--json", "--fault", "crash=tenant_b@5",
                              "--fault", "restart=tenant_b+90")
    doc = json.loads(out)
    assert code == 0 and doc["status"] == "optimal" and doc["membership"]["incarnations"]["2"] == 2
    assert doc["membership"]["restarts"] == 1 and doc["membership"]["lost"] == []
    # in-process solves have no membership
    code, out, _err = _invoke(FLEET, "--json")
    assert json.loads(out)["membership"] is None


def test_json_is_valid_even_for_non_finite_values() -> None:
    nan, inf = float("nan"), float("inf")
    result = SolveResult("max_iterations", inf, 3, nan, -inf, 0.1, {"o": {"x": np.array([1.0, nan, inf])}},
                         {"s": {"m": np.array([[nan, 2.0]])}})
    text = json.dumps(result.to_json(), sort_keys=True, allow_nan=False)  # raises on NaN/Infinity
    doc = json.loads(text)
    assert doc["objective"] is None and doc["primal_residual"] is None and doc["dual_residual"] is None
    assert doc["objects"]["o"]["x"] == [1.0, None, None] and doc["shared"]["s"]["m"] == [[None, 2.0]]


def test_log_format_json_gives_one_json_object_per_line() -> None:
    code, out, err = _invoke(FLEET, "--backend", "distributed", "--json", "--log-format", "json",
                             "--fault", "crash=tenant_b@5")
    assert code == 1 and json.loads(out)["status"] == "member_lost"
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    events = [r.get("event") for r in records]
    assert events.count("member_joined") == 4 and "member_dropped" in events and "member_lost" in events
    dropped = next(r for r in records if r.get("event") == "member_dropped")
    assert dropped["member"] == 2 and dropped["label"] == "tenant_b" and dropped["level"] == "info"
    # text format: warnings and above by default, so a clean run prints no log line
    code, out, err = _invoke(FLEET, "--backend", "distributed", "--json")
    assert code == 0 and "catoptc: INFO" not in err


def test_metrics_in_the_prometheus_text_format(tmp_path: Path) -> None:
    path = tmp_path / "run.prom"
    code, _out, err = _invoke(FLEET, "--backend", "distributed", "--quiet", "--metrics", str(path),
                              "--fault", "crash=tenant_b@5", "--fault", "restart=tenant_b+90")
    assert code == 0, err
    text = path.read_text()
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"# (HELP|TYPE) catopt_\w+ ", line), line
            continue
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    assert samples['catopt_solve_info{status="optimal",mode="synchronous"}'] == 1.0
    assert samples["catopt_members_dropped_total"] == 1.0 and samples["catopt_member_restarts_total"] == 1.0
    assert samples["catopt_members"] == 4.0 and samples["catopt_members_lost"] == 0.0
    assert samples["catopt_retransmits_total"] > 0
    count = samples["catopt_round_latency_seconds_count"]
    assert count == samples['catopt_round_latency_seconds_bucket{le="+Inf"}'] == samples["catopt_solve_iterations"]
    buckets = [v for k, v in samples.items() if k.startswith("catopt_round_latency_seconds_bucket")]
    assert buckets == sorted(buckets)  # cumulative
    assert math.isfinite(samples["catopt_round_latency_seconds_sum"])


def test_each_warning_is_printed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A warning raised with `warnings.warn` *and* recorded in the result (as the Ray backend does
    for an accelerator fallback) is one line on stderr."""
    import warnings

    import catopt_dsl.cli as cli

    real = cli._run

    def warn_twice(*args: object) -> object:
        result = real(*args)  # type: ignore[arg-type]
        text = "object(s) tenant_a declared `on cuda` but the Ray cluster has no NVIDIA (cuda) GPU; running on CPU"
        warnings.warn(text, RuntimeWarning, stacklevel=1)
        result.warnings.insert(0, text)  # type: ignore[attr-defined]
        return result

    monkeypatch.setattr(cli, "_run", warn_twice)
    code, _out, err = _invoke(FLEET, "--json")
    assert code == 0 and err.count("declared `on cuda`") == 1


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


@pytest.mark.slow
def test_ctrl_c_exits_130_without_a_traceback() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "catopt_dsl", "solve", str(ROOT / "examples" / "federated_logreg.cat"),
         "--backend", "distributed", "--json", "--quiet", "--max-iter", "100000", "--eps-abs", "1e-12",
         "--eps-rel", "1e-12"],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(8)  # imports and the first rounds
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err and "Aborted" not in err and out == ""


def test_a_bad_address_is_a_usage_error_within_30_s() -> None:
    pytest.importorskip("ray")
    import socket
    import threading

    # a port that speaks something else (HTTP/1): Ray itself would hang on it for minutes
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    try:
        for address, needle in (
            (f"127.0.0.1:{dead_port}", "cannot connect"),
            (f"127.0.0.1:{port}", "does not speak gRPC"),
            ("no-such-host.invalid:6379", "cannot resolve"),
            ("10.0.0.5", "expected HOST:PORT"),
        ):
            t0 = time.monotonic()
            code, out, err = _invoke(FLEET, "--backend", "ray", "--address", address, "--json")
            assert time.monotonic() - t0 < 30
            assert code == 2 and needle in err and "internal error" not in err and out == "", (address, err)
    finally:
        srv.close()


def test_min_members_and_checkpoint_folder_are_checked_before_solving(tmp_path: Path) -> None:
    code, _out, err = _invoke(FLEET, "--backend", "distributed", "--min-members", "5")
    assert code == 2 and "the plan has 4 objects" in err
    code, _out, err = _invoke(FLEET, "--backend", "distributed", "--checkpoint", str(tmp_path / "nowhere" / "c.ckpt"))
    assert code == 2 and "does not exist" in err
