"""Generate every data file the examples load, deterministically.

Run from anywhere: ``python examples/make_data.py``. Each example draws from its own
``numpy.random.default_rng`` seed, so adding an example never changes another's data, and the
same numpy version always writes byte-identical files (``np.save`` stores no timestamps; CSV
values are written with a fixed format). Total output stays well under 2 MB.

Problems are planted: each dataset is generated from a known "true" model plus noise, so the
solved plans have a meaningful answer (a recovered weight vector, a binding capacity) rather than
fitting pure noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"


def _save_npy(name: str, array: np.ndarray) -> None:
    # float64 little-endian, C order: the loader's canonical form, identical across platforms.
    np.save(DATA_DIR / name, np.ascontiguousarray(array, dtype="<f8"), allow_pickle=False)


def _save_csv(name: str, array: np.ndarray) -> None:
    # Fixed format and "\n" line endings so the bytes never depend on the platform.
    rows = np.atleast_2d(array)
    text = "".join(",".join(f"{v:.6f}" for v in row) + "\n" for row in rows)
    (DATA_DIR / name).write_bytes(text.encode("ascii"))


def federated_logreg() -> None:
    """8 sites x 40 samples x 5 features; labels in {-1, +1} from a planted linear model."""
    rng = np.random.default_rng(1001)
    sites, samples, features = 8, 40, 5
    w_true = rng.normal(size=features)
    X = rng.normal(size=(sites, samples, features))
    # Each site sees a shifted feature distribution, as real federated data does.
    X += rng.normal(scale=0.5, size=(sites, 1, features))
    margin = X @ w_true + rng.normal(scale=0.5, size=(sites, samples))
    y = np.where(margin >= 0.0, 1.0, -1.0)
    _save_npy("logreg_X.npy", X)
    _save_npy("logreg_y.npy", y)


def gpu_fleet() -> None:
    """Per-tenant value of one hour on each of 3 GPU pools (rows: tenant_a..tenant_d), as CSV."""
    rng = np.random.default_rng(1002)
    values = np.round(rng.uniform(1.0, 5.0, size=(4, 3)), 2)
    _save_csv("gpu_fleet_values.csv", values)


def mixed_plan() -> None:
    """6 sites: least-squares data (20 x 4) for the shared model, plus each site's compute need."""
    rng = np.random.default_rng(1003)
    sites, rows, features = 6, 20, 4
    w_true = rng.normal(size=features)
    A = rng.normal(size=(sites, rows, features))
    b = A @ w_true + rng.normal(scale=0.1, size=(sites, rows))
    # Needs sum to ~9 hours while the budget is 6, so the sharing limit binds.
    need = np.round(rng.uniform(1.0, 2.0, size=sites), 3)
    _save_npy("mixed_A.npy", A)
    _save_npy("mixed_b.npy", b)
    _save_npy("mixed_need.npy", need)


def sites_200() -> None:
    """200 sites x (30 x 10) least squares with a sparse planted model."""
    rng = np.random.default_rng(1004)
    sites, rows, features = 200, 30, 10
    w_true = np.zeros(features)
    w_true[[1, 4, 7]] = [1.5, -2.0, 0.75]
    A = rng.normal(size=(sites, rows, features))
    b = A @ w_true + rng.normal(scale=0.2, size=(sites, rows))
    _save_npy("sites_A.npy", A)
    _save_npy("sites_b.npy", b)


def consensus_lasso() -> None:
    """16 tenants x (50 x 20) lasso data with 4 non-zero coefficients."""
    rng = np.random.default_rng(1005)
    tenants, rows, features = 16, 50, 20
    w_true = np.zeros(features)
    w_true[[0, 5, 11, 17]] = [2.0, -1.0, 0.5, 1.25]
    A = rng.normal(size=(tenants, rows, features))
    b = A @ w_true + rng.normal(scale=0.1, size=(tenants, rows))
    _save_npy("lasso_A.npy", A)
    _save_npy("lasso_b.npy", b)


def main() -> None:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    federated_logreg()
    gpu_fleet()
    mixed_plan()
    sites_200()
    consensus_lasso()


if __name__ == "__main__":
    main()
