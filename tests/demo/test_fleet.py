"""``catoptc demo fleet``: every hourly check holds, the report opens with real charts, the ledger
verifies (and stops verifying when touched), the same run writes the same ledger."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from catopt_dsl.cli import main
from catopt_dsl.compile import analyze
from catopt_dsl.demo.fleet import REL_TOL, run_fleet
from catopt_dsl.ledger.ledger import Ledger
from catopt_dsl.solver.centralized import solve_centralized

pytest.importorskip("matplotlib")
from PIL import Image


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.srcs.append(dict(attrs)["src"] or "")


def _check_report(path: Path) -> int:
    parser = _Images()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    assert {"html", "body", "table"} <= set(parser.tags)
    assert parser.srcs, "the report embeds no chart"
    for src in parser.srcs:
        head, _, data = src.partition(",")
        assert head == "data:image/png;base64"
        raw = base64.b64decode(data, validate=True)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        img = Image.open(io.BytesIO(raw))
        img.load()
        assert img.width >= 300 and img.height >= 200
        pixels = np.asarray(img.convert("L"))
        # a chart, not a blank canvas: many distinct grey levels and a fair share of ink
        assert len(np.unique(pixels)) > 20
        assert (pixels < 200).mean() > 0.01
    return len(parser.srcs)


@pytest.mark.slow
def test_demo_fleet_in_process_holds_every_check(tmp_path: Path) -> None:
    out = tmp_path / "fleet"
    res = CliRunner().invoke(main, ["demo", "fleet", "--hours", "7", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "7/7 centralised checks held" in res.output
    assert _check_report(out / "report.html") == 4
    ledger = Ledger.open(out / "ledger.catlog")
    assert ledger.verify().ok and ledger.size == 14  # a delta and a result per hour
    kinds = [e.entry.kind for e in ledger.entries()]
    assert kinds == ["demo.fleet.delta", "demo.fleet.result"] * 7
    assert all(e.entry.body["check"] for e in ledger.entries() if e.entry.kind == "demo.fleet.result")
    # hour 6: the on-prem cluster lost 2 of 6 nodes; the delta says so and the plan follows
    text = (out / "specs" / "hour_06.cat").read_text(encoding="utf-8")
    assert "set fleet.capacity = [32.0000, 16.0000, 16.0000];" in text


def test_hour_plans_are_the_deltas_results_and_match_the_centralised_solve(tmp_path: Path) -> None:
    run = run_fleet(tmp_path, hours=3, backend="distributed")
    assert run.all_checks and run.ledger_ok
    for h in run.hours:
        s = h.final
        a = analyze(tmp_path / s.spec)
        assert a.plan is not None
        plan = a.plan if s.delta is None else a.plan.delta(s.delta).result
        ref = solve_centralized(plan)
        # the record's centralised objective is an independent solve of the delta's result
        assert ref.objective == pytest.approx(s.centralized, rel=1e-7, abs=1e-7)
        assert s.rel_error is not None and s.rel_error <= REL_TOL
        assert s.status == "optimal"
        assert s.duplicates + s.retransmits > 0  # the faults did hit the run
    from catopt_dsl.demo.report import write_fleet_report

    assert _check_report(write_fleet_report(run, tmp_path / "report.html")) == 4


def test_a_touched_ledger_does_not_verify(tmp_path: Path) -> None:
    run = run_fleet(tmp_path, hours=2, backend="inprocess")
    assert run.ledger_ok
    path = tmp_path / "ledger.catlog"
    data = bytearray(path.read_bytes())
    i = data.index(b'"status":"optimal"')
    data[i + len(b'"status":"') : i + len(b'"status":"optimal')] = b"OPTIMAL"
    path.write_bytes(bytes(data))
    assert not Ledger.open(path).verify().ok


def test_same_run_same_ledger_bytes(tmp_path: Path) -> None:
    run_fleet(tmp_path / "a", hours=2, backend="distributed")
    run_fleet(tmp_path / "b", hours=2, backend="distributed")
    assert (tmp_path / "a" / "ledger.catlog").read_bytes() == (tmp_path / "b" / "ledger.catlog").read_bytes()
    assert (tmp_path / "a" / "specs" / "hour_01.cat").read_bytes() == (tmp_path / "b" / "specs" / "hour_01.cat").read_bytes()


def test_out_folder_with_other_files_is_refused(tmp_path: Path) -> None:
    mine = tmp_path / "notes.txt"
    mine.write_text("keep me", encoding="utf-8")
    res = CliRunner().invoke(main, ["demo", "fleet", "--hours", "1", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "did not write" in res.output
    assert mine.read_text(encoding="utf-8") == "keep me"
    assert not (tmp_path / "report.html").exists()


@pytest.mark.slow
def test_full_day_with_a_dark_domain(tmp_path: Path) -> None:
    run = run_fleet(tmp_path, hours=24, backend="distributed")
    assert run.all_checks and run.ledger_ok
    assert len(run.hours) == 24
    dark = run.hours[14]
    lost, final = dark.solves
    # the dark domain's tenants were lost mid-run: never optimal, the remaining plan solved and checked
    assert lost.status == "member_lost" and lost.remaining_status == "optimal" and lost.check
    assert lost.lost and all(t.startswith("t_") for t in lost.lost)
    assert final.status == "optimal" and dark.capacity[2] == 0.0
    assert set(lost.lost) <= set(run.hours[16].joined)  # back at hour 16
    assert "migrate" in (tmp_path / "specs" / "hour_09.cat").read_text(encoding="utf-8")
    warm = sum(h.final.iterations for h in run.hours[1:])
    cold = sum(h.final.cold_iterations or 0 for h in run.hours[1:])
    assert warm < cold
    _check_report_path = tmp_path / "report.html"
    from catopt_dsl.demo.report import write_fleet_report

    write_fleet_report(run, _check_report_path)
    assert _check_report(_check_report_path) == 4


@pytest.mark.slow
def test_demo_fleet_on_ray(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    # 15 hours: through the edge going dark, where a Ray actor batches several tenants into one
    # node and a dark tenant takes its actor-mates with it
    res = CliRunner().invoke(main, ["demo", "fleet", "--backend", "ray", "--hours", "15", "--out", str(tmp_path / "r"),
                                    "--quiet"])
    assert res.exit_code == 0, res.output
    assert "16/16 centralised checks held" in res.output
    assert Ledger.open(tmp_path / "r" / "ledger.catlog").verify().ok


def test_in_process_the_dark_domain_is_a_plan_change(tmp_path: Path) -> None:
    run = run_fleet(tmp_path, hours=15, backend="inprocess")
    assert run.all_checks and run.ledger_ok
    dark = run.hours[14]
    (only,) = dark.solves  # no protocol: nothing to lose mid-run, one warm solve of the cut plan
    assert only.status == "optimal" and dark.capacity[2] == 0.0 and dark.left
    assert any("went dark" in e for e in dark.events)
    assert not any(t in dark.allocations for t in dark.left)


def test_a_changed_spec_file_is_caught(tmp_path: Path) -> None:
    from catopt_dsl.demo.fleet import verify_ledger

    run = run_fleet(tmp_path, hours=2, backend="inprocess")
    assert run.ledger_ok
    spec = tmp_path / "specs" / "hour_01.cat"
    spec.write_text(spec.read_text(encoding="utf-8").replace("set fleet.capacity", "set fleet.capacity "), encoding="utf-8")
    verify_ledger(run)
    assert not run.ledger_ok and any("hour_01.cat" in p for p in run.ledger_problems)


def test_the_ledger_is_signed_by_the_given_identity(tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    assert CliRunner().invoke(main, ["identity", "new", "--out", str(key)]).exit_code == 0
    from catopt_dsl.identity.keys import Identity

    did = Identity.load(key).did
    res = CliRunner().invoke(main, ["demo", "fleet", "--hours", "1", "--backend", "inprocess", "--identity", str(key),
                                    "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert {e.entry.actor for e in Ledger.open(tmp_path / "o" / "ledger.catlog").entries()} == {did}
