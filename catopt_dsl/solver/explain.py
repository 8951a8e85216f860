"""``catoptc check --explain``: each object's solver class, the method its x-update gets, and why.

Read from the IR analysis (the class and its reason) and the row layout (the method: it depends
on which rows link the object). Family members that agree are shown on one line. A member whose
data fails its method's numeric checks when the solve sets up (a singular system, crossed bounds)
is solved by CVXPY instead; ``solve --json``'s ``local_solvers`` reports what actually ran.
"""

from __future__ import annotations

from catopt_dsl.ir.analysis import analyze_ir
from catopt_dsl.ir.model import IRPlan
from catopt_dsl.solver.layout import build_layout
from catopt_dsl.solver.local import choose_method

__all__ = ["explain"]


def explain(plan: IRPlan) -> list[str]:
    """One line per object (per run of family members that agree): ``name: class -> method (why)``."""
    layout = build_layout(plan)
    analysis = analyze_ir(plan)
    entries: list[tuple[str | None, int | None, str, tuple[str, str, str, str]]] = []
    for o in layout.objects:
        a = analysis.object(o.obj.name)
        if o.obj.n:
            method, how = choose_method(a.group, a.index, o.M)
        else:
            method, how = "cvxpy", "no variables"
        entries.append((o.obj.family, o.obj.index, o.obj.name, (a.solver_class, a.reason, method, how)))
    lines: list[str] = []
    i = 0
    while i < len(entries):
        family, index, name, facts = entries[i]
        j = i + 1
        if family is not None and index is not None:
            while (
                j < len(entries)
                and entries[j][0] == family
                and entries[j][1] == index + (j - i)
                and entries[j][3] == facts
            ):
                j += 1
        label = name if j == i + 1 or index is None else f"{family}[{index}..{index + (j - i - 1)}]"
        cls, reason, method, how = facts
        detail = reason if method == "cvxpy" and cls == "general" else f"{reason}; {how}"
        lines.append(f"{label}: {cls} -> {method} ({detail})")
        i = j
    return lines
