"""Every picture catoptc draws, in one place: ``solve --plot`` and the demos' report charts.

Charts take plain data (numbers per iteration, per hour, per tenant), never a demo's own types,
so any stage may hand data over. Each returns the PNG bytes (and writes them to ``path`` when
given), drawn with matplotlib's Agg backend (no display needed) in one house style: the same
palette, size and resolution everywhere. matplotlib is optional (``pip install catopt-dsl[plot]``);
without it a clear ``RuntimeError`` says so.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from catopt_dsl.solver.result import SolveResult

__all__ = [
    "allocation_chart",
    "check_chart",
    "iterations_chart",
    "plot_history",
    "residual_chart",
    "throughput_chart",
]

DPI = 100
#: log-scale axes cannot show exact zeros
FLOOR = 1e-300


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "plotting needs matplotlib; install it with `pip install matplotlib` "
            "(or `pip install catopt-dsl[plot]`)"
        ) from exc
    return plt


def _finish(fig: Any, path: str | Path | None) -> bytes:
    """Lay out, encode as PNG, close; write to ``path`` too when given."""
    plt = _pyplot()
    fig.tight_layout()
    buf = io.BytesIO()
    # No timestamps in the file: the same data gives the same bytes.
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    data = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def plot_history(result: SolveResult, path: str | Path) -> Path:
    """Write r_prim and r_dual (log scale), the objective and rho against the iteration to ``path``
    (an image in the format its suffix names: ``.png``, ``.svg`` or ``.pdf``)."""
    if not result.history:
        raise ValueError("the result has no iteration history to plot (centralised solve?)")
    plt = _pyplot()
    its = [row["iteration"] for row in result.history]
    fig, (ax1, ax_obj, ax2) = plt.subplots(3, 1, sharex=True, figsize=(7, 8))
    ax1.semilogy(its, [max(row["r_prim"], FLOOR) for row in result.history], label="r_prim")
    ax1.semilogy(its, [max(row["r_dual"], FLOOR) for row in result.history], label="r_dual")
    ax1.set_ylabel("residual (inf-norm)")
    ax1.legend()
    ax1.set_title(f"ADMM: {result.status} after {result.iterations} iterations")
    ax_obj.plot(its, [row["objective"] for row in result.history], color="tab:purple")
    ax_obj.set_ylabel("objective")
    ax2.semilogy(its, [row["rho"] for row in result.history], color="tab:green")
    ax2.set_ylabel("rho")
    ax2.set_xlabel("iteration")
    out = Path(path)
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)  # the format follows the suffix (PNG, SVG, PDF)
    plt.close(fig)
    return out


def allocation_chart(
    hours: Sequence[int],
    classes: Sequence[str],
    allocations: Mapping[str, Sequence[Sequence[float]]],
    capacity: Sequence[Sequence[float]],
    path: str | Path | None = None,
) -> bytes:
    """Stacked accelerator-hours per tenant over time, one panel per class, with the capacity line.

    ``allocations[tenant][h][c]``: what the tenant got in hour ``hours[h]`` of class ``c`` (0 when
    absent); ``capacity[h][c]``: the class's capacity that hour.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(len(classes), 1, sharex=True, figsize=(9, 2.6 * len(classes)))
    axes = list(axes) if len(classes) > 1 else [axes]
    cmap = plt.get_cmap("tab20")
    names = sorted(allocations)
    # Each hour is drawn as a step from its start to the next hour's, the last one included.
    xs = [*hours, hours[-1] + 1] if hours else []
    for c, (ax, cls) in enumerate(zip(axes, classes)):
        ys = [[float(allocations[n][h][c]) for h in [*range(len(hours)), len(hours) - 1]] for n in names]
        ax.stackplot(xs, ys, labels=names, colors=[cmap(i % 20) for i in range(len(names))], step="post")
        ax.step(xs, [float(cap[c]) for cap in [*capacity, capacity[-1]]], where="post", color="black", lw=1.2,
                label="capacity")
        ax.set_ylabel(f"{cls} h")
        ax.set_title(f"{cls}: accelerator-hours per tenant", fontsize=10)
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    axes[-1].set_xlabel("simulated hour")
    return _finish(fig, path)


def residual_chart(
    traces: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    path: str | Path | None = None,
) -> bytes:
    """Primal and dual residuals per iteration of every re-solve (one line each, log scale).

    ``traces``: (label, r_prim per iteration, r_dual per iteration) per solve, in order.
    """
    plt = _pyplot()
    fig, (ax_p, ax_d) = plt.subplots(1, 2, sharey=True, figsize=(10, 3.8))
    cmap = plt.get_cmap("viridis")
    n = max(1, len(traces) - 1)
    for i, (label, rp, rd) in enumerate(traces):
        colour = cmap(i / n)
        ax_p.semilogy(range(1, len(rp) + 1), [max(v, FLOOR) for v in rp], color=colour, lw=0.9, label=label)
        ax_d.semilogy(range(1, len(rd) + 1), [max(v, FLOOR) for v in rd], color=colour, lw=0.9)
    ax_p.set_title("primal residual per re-solve", fontsize=10)
    ax_d.set_title("dual residual per re-solve", fontsize=10)
    for ax in (ax_p, ax_d):
        ax.set_xlabel("iteration")
    ax_p.set_ylabel("residual (inf-norm)")
    if len(traces) <= 30:
        handles, names = ax_p.get_legend_handles_labels()
        ax_d.legend(handles, names, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, ncol=2)
    return _finish(fig, path)


def iterations_chart(
    hours: Sequence[int],
    warm: Sequence[int],
    cold: Sequence[int | None],
    path: str | Path | None = None,
) -> bytes:
    """Iterations of each hour's warm re-solve beside a cold solve of the same plan."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.6))
    xs = list(hours)
    ax.bar([x - 0.2 for x in xs], list(warm), width=0.4, label="warm (from last hour)", color="tab:blue")
    ax.bar([x + 0.2 for x in xs], [c if c is not None else 0 for c in cold], width=0.4, label="cold", color="tab:gray")
    saved = sum((c - w) for w, c in zip(warm, cold) if c is not None)
    ax.set_title(f"ADMM iterations per hour: warm starts saved {saved} in total", fontsize=10)
    ax.set_xlabel("simulated hour")
    ax.set_ylabel("iterations")
    ax.legend()
    return _finish(fig, path)


def check_chart(
    labels: Sequence[str],
    rel_errors: Sequence[float | None],
    tolerance: float,
    path: str | Path | None = None,
) -> bytes:
    """Each check's relative objective error against the centralised solve, and the tolerance."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.6))
    xs = list(range(len(labels)))
    vals = [max(e, 1e-16) if e is not None else float("nan") for e in rel_errors]
    colours = ["tab:green" if e is not None and e <= tolerance else "tab:red" for e in rel_errors]
    ax.scatter(xs, vals, c=colours, zorder=3)
    ax.axhline(tolerance, color="tab:red", ls="--", lw=1, label=f"tolerance {tolerance:g}")
    ax.set_yscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels(list(labels), rotation=90, fontsize=7)
    ax.set_ylabel("|obj - centralised| / max(1, |centralised|)")
    ax.set_title("each solve checked against a centralised CVXPY solve of the same plan", fontsize=10)
    ax.legend()
    return _finish(fig, path)


def throughput_chart(
    tenants: Sequence[str],
    planned: Sequence[float],
    achieved: Sequence[float],
    unit: str,
    title: str,
    path: str | Path | None = None,
) -> bytes:
    """Planned against achieved throughput per tenant (bars side by side)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(tenants) + 2), 3.6))
    xs = list(range(len(tenants)))
    ax.bar([x - 0.2 for x in xs], list(planned), width=0.4, label="planned", color="tab:blue")
    ax.bar([x + 0.2 for x in xs], list(achieved), width=0.4, label="achieved", color="tab:orange")
    ax.set_xticks(xs)
    ax.set_xticklabels(list(tenants))
    ax.set_ylabel(unit)
    ax.set_title(title, fontsize=10)
    ax.legend()
    return _finish(fig, path)
