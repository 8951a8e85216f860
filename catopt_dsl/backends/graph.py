"""``catoptc graph``: the plan as a diagram (Graphviz DOT, rendered to SVG or PNG by ``dot``).

What is drawn, from the IR:

* LocalProblems, grouped in one cluster per platform (``on cuda``, ``on cpu``, ...); a family is
  one node labelled with its size (``site[0..199]  x200``), not one node per member;
* SharedVariables blocks as folder-shaped nodes;
* Morphisms as arrows from an object (or family) to a block, labelled ``name: Schema vN``
  (a family of morphisms is one arrow);
* Limits as diamond "gluing" nodes on their block: consensus links as dashed edges from the
  linked objects, couplings (``cap#0 <=``) listing their sense;
* the Colimit as a double octagon joined to the blocks it reports.

The DOT text is deterministic (same plan, same bytes). Rendering needs Graphviz's ``dot`` on the
PATH; without it the caller writes the ``.dot`` text and says so.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import OrderedDict
from pathlib import Path

from catopt_dsl.ir.model import IRPlan

__all__ = ["FORMATS", "GraphError", "plan_dot", "render"]

#: output formats by file suffix
FORMATS = ("svg", "png", "dot")


class GraphError(RuntimeError):
    """Rendering failed (Graphviz missing, or ``dot`` refused the input)."""


def _q(text: str) -> str:
    """A DOT string literal (IDs and labels are always quoted, so any name is safe)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _unit(name: str, family: str | None) -> str:
    return family if family is not None else name


def plan_dot(plan: IRPlan) -> str:
    """The DOT text of ``plan`` (see the module docstring for what is drawn)."""
    units: OrderedDict[str, dict[str, object]] = OrderedDict()
    for o in plan.objects:
        key = _unit(o.name, o.family)
        u = units.setdefault(key, {"platform": o.platform or "", "members": [], "family": o.family})
        u["members"].append(o.index)  # type: ignore[attr-defined]
    lines = [
        f"digraph {_q(plan.name)} {{",
        "  graph [rankdir=LR, fontname=Helvetica, labelloc=t, label=" + _q(f"plan {plan.name}") + "];",
        "  node [fontname=Helvetica, fontsize=11];",
        "  edge [fontname=Helvetica, fontsize=9];",
    ]
    by_platform: OrderedDict[str, list[str]] = OrderedDict()
    for key, u in units.items():
        by_platform.setdefault(str(u["platform"]), []).append(key)
    for i, (platform, keys) in enumerate(sorted(by_platform.items())):
        lines.append(f"  subgraph {_q(f'cluster_{i}')} {{")
        lines.append(f"    label={_q(f'on {platform}' if platform else 'no platform')}; style=rounded; color=gray60;")
        for key in keys:
            u = units[key]
            members = [m for m in u["members"] if m is not None]  # type: ignore[attr-defined]
            if u["family"] is not None and members:
                label = f"{key}[{min(members)}..{max(members)}]\nx{len(members)}"
                shape = "box3d"
            else:
                label, shape = key, "box"
            lines.append(f"    {_q('obj:' + key)} [label={_q(label)}, shape={shape}, style=filled, fillcolor=aliceblue];")
        lines.append("  }")
    for blk in plan.shared:
        label = blk.name + "\n" + (", ".join(v.name for v in blk.vars) or "params only")
        lines.append(f"  {_q('shared:' + blk.name)} [label={_q(label)}, shape=folder, style=filled, fillcolor=lightyellow];")
    drawn: set[tuple[str, str, str]] = set()
    for m in plan.morphisms:
        src = _unit(m.source, plan.object(m.source).family)
        name = m.name.split("[", 1)[0]
        edge = (src, m.target, name)
        if edge in drawn:
            continue  # a morphism family is one arrow
        drawn.add(edge)
        label = f"{name}: {m.schema} v{m.version}"
        lines.append(f"  {_q('obj:' + src)} -> {_q('shared:' + m.target)} [label={_q(label)}];")
    limits: OrderedDict[str, tuple[str, list[str]]] = OrderedDict()
    for link in plan.consensus:
        key = link.limit
        limits.setdefault(key, (link.shared, []))
    for c in plan.couplings:
        limits.setdefault(c.limit or c.name.split("#", 1)[0], (c.shared, []))
    for c in plan.couplings:
        limits[c.limit or c.name.split("#", 1)[0]][1].append(f"{c.name} {c.sense}")
    family_limits: OrderedDict[str, tuple[str, list[str]]] = OrderedDict()
    for key, (shared, rows) in limits.items():
        base = key.split("[", 1)[0]
        entry = family_limits.setdefault(base, (shared, []))
        entry[1].extend(rows)
    for key, (shared, rows) in family_limits.items():
        shown = rows[:4] + ([f"... {len(rows) - 4} more"] if len(rows) > 4 else [])
        label = "\n".join([f"Limit {key}", *shown])
        lines.append(f"  {_q('limit:' + key)} [label={_q(label)}, shape=diamond, style=filled, fillcolor=mistyrose];")
        lines.append(f"  {_q('limit:' + key)} -> {_q('shared:' + shared)} [arrowhead=none, penwidth=2];")
    linked: set[tuple[str, str]] = set()
    for link in plan.consensus:
        src = _unit(link.object, plan.object(link.object).family)
        base = link.limit.split("[", 1)[0]
        if (src, base) in linked:
            continue
        linked.add((src, base))
        lines.append(f"  {_q('obj:' + src)} -> {_q('limit:' + base)} [style=dashed, label={_q(link.var + ' ==')}];")
    if plan.colimit is not None:
        lines.append(f"  {_q('colimit:' + plan.colimit.name)} [label={_q('Colimit ' + plan.colimit.name)}, shape=doubleoctagon];")
        for name in plan.colimit.shared:
            lines.append(f"  {_q('shared:' + name)} -> {_q('colimit:' + plan.colimit.name)} [style=dotted];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(plan: IRPlan, out: Path) -> tuple[Path, str]:
    """Write the diagram to ``out`` (format from its suffix). Returns ``(path written, note)``:
    without Graphviz the DOT text goes to ``out`` with a ``.dot`` suffix and the note says so."""
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise GraphError(f"unsupported format `.{fmt}`: use one of {', '.join('.' + f for f in FORMATS)}")
    text = plan_dot(plan)
    if fmt == "dot":
        out.write_text(text, encoding="utf-8")
        return out, ""
    dot = shutil.which("dot")
    if dot is None:
        fallback = out.with_suffix(".dot")
        fallback.write_text(text, encoding="utf-8")
        return fallback, f"Graphviz's `dot` is not installed: wrote the DOT text to {fallback} (apt-get install graphviz to render it)"
    done = subprocess.run([dot, f"-T{fmt}", "-o", str(out)], input=text.encode(), capture_output=True, timeout=120)
    if done.returncode != 0:
        raise GraphError(f"dot failed: {done.stderr.decode(errors='replace').strip()[:500]}")
    return out, ""
