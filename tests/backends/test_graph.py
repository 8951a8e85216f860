"""`catoptc graph`: one node per object or family, per shared block, per Limit; DOT without Graphviz."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from catopt_dsl.backends.graph import plan_dot
from catopt_dsl.cli import main
from catopt_dsl.compile import load_plan

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.cat"))


def _expected_nodes(spec: Path) -> set[str]:
    plan = load_plan(spec)
    units = {o.family or o.name for o in plan.objects}
    return {f"obj:{u}" for u in units} | {f"shared:{b.name}" for b in plan.shared}


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (test.sh installs it)")
@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_renders_an_svg_with_one_node_per_object_or_family(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.svg"
    res = CliRunner().invoke(main, ["graph", str(spec), "-o", str(out)])
    assert res.exit_code == 0, res.output
    svg = out.read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    titles = set(re.findall(r'<g id="node\d+" class="node">\s*<title>([^<]+)</title>', svg))
    expected = _expected_nodes(spec)
    assert expected <= titles, expected - titles
    # families are collapsed: one node for `site`, however many members
    assert sum(1 for t in titles if t.startswith("obj:")) == len({t for t in expected if t.startswith("obj:")})


def test_without_graphviz_the_dot_text_is_written_and_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import catopt_dsl.backends.graph as graph

    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    res = CliRunner().invoke(main, ["graph", str(ROOT / "examples" / "sites_200.cat"), "-o", str(tmp_path / "p.svg")])
    assert res.exit_code == 0 and "not installed" in res.output
    text = (tmp_path / "p.dot").read_text(encoding="utf-8")
    assert text.count('"obj:site"') >= 1 and "x200" in text


def test_dot_text_is_deterministic_and_unsupported_formats_are_usage_errors(tmp_path: Path) -> None:
    plan = load_plan(ROOT / "examples" / "mixed_plan.cat")
    assert plan_dot(plan) == plan_dot(load_plan(ROOT / "examples" / "mixed_plan.cat"))
    res = CliRunner().invoke(main, ["graph", str(ROOT / "examples" / "mixed_plan.cat"), "-o", str(tmp_path / "p.pdf")])
    assert res.exit_code == 2 and "unsupported format" in res.output
