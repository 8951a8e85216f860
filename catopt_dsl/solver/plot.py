"""``plot_history(result, path)``: residuals, objective and rho per iteration (for ``--plot``).

matplotlib is optional (``pip install catopt-dsl[plot]``); without it a clear ``RuntimeError``
says so. The figure is written with the Agg backend (no display needed).
"""

from __future__ import annotations

from pathlib import Path

from catopt_dsl.solver.result import SolveResult

__all__ = ["plot_history"]


def plot_history(result: SolveResult, path: str | Path) -> Path:
    """Write r_prim and r_dual (log scale), the objective and rho against the iteration to ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "plotting needs matplotlib; install it with `pip install matplotlib` "
            "(or `pip install catopt-dsl[plot]`)"
        ) from exc
    if not result.history:
        raise ValueError("the result has no iteration history to plot (centralised solve?)")
    its = [row["iteration"] for row in result.history]
    fig, (ax1, ax_obj, ax2) = plt.subplots(3, 1, sharex=True, figsize=(7, 8))
    floor = 1e-300  # log scale cannot show exact zeros
    ax1.semilogy(its, [max(row["r_prim"], floor) for row in result.history], label="r_prim")
    ax1.semilogy(its, [max(row["r_dual"], floor) for row in result.history], label="r_dual")
    ax1.set_ylabel("residual (inf-norm)")
    ax1.legend()
    ax1.set_title(f"ADMM: {result.status} after {result.iterations} iterations")
    ax_obj.plot(its, [row["objective"] for row in result.history], color="tab:purple")
    ax_obj.set_ylabel("objective")
    ax2.semilogy(its, [row["rho"] for row in result.history], color="tab:green")
    ax2.set_ylabel("rho")
    ax2.set_xlabel("iteration")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
