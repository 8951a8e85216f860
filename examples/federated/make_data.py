"""Data for the federated example: multinomial logistic regression across 4 sites.

``python examples/federated/make_data.py`` writes ``data/site_<i>.npz`` (arrays ``X``: float64
n_i x 5, ``y``: int64 labels in {0, 1, 2}) for the adapter tenants, and ``data/site_<i>_X.npy`` /
``data/site_<i>_Y.npy`` (one-hot float64 labels) for a tenant written in the ``.cat`` language,
which loads ``.npy`` only. Deterministic: a fixed seed, and archives written with fixed zip
timestamps, so the same numpy writes byte-identical files.

The sites are not identically distributed (each has its own feature shift and size), as in real
federated data; labels are drawn from a planted softmax model, so the pooled problem has a
meaningful answer.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

SEED = 15
SITES = 4
FEATURES = 5
CLASSES = 3
SIZES = (80, 60, 100, 40)
#: The L2 weight of the shared regulariser lam/2 (||W||^2 + ||b||^2) (kept by the shared block).
LAMBDA = 0.1
DATA_DIR = Path(__file__).resolve().parent / "data"


def generate(seed: int = SEED) -> list[dict[str, np.ndarray]]:
    """The sites' data: a list of {"X": (n_i, 5) float64, "y": (n_i,) int64}."""
    rng = np.random.default_rng(seed)
    W_true = rng.standard_normal((FEATURES, CLASSES))
    b_true = 0.5 * rng.standard_normal(CLASSES)
    sites = []
    for i, n in enumerate(SIZES):
        shift = 0.5 * rng.standard_normal(FEATURES) * (i + 1) / SITES
        X = rng.standard_normal((n, FEATURES)) + shift
        Z = X @ W_true + b_true
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        u = rng.random(n)
        y = (u[:, None] > np.cumsum(P, axis=1)).sum(axis=1).astype(np.int64)
        sites.append({"X": np.ascontiguousarray(X, dtype="<f8"), "y": np.minimum(y, CLASSES - 1).astype("<i8")})
    return sites


#: The MLP variant's hidden width (federated_mlp.cat, losses_*.mlp_loss).
HIDDEN = 8


def mlp_init(seed: int = SEED) -> dict[str, np.ndarray]:
    """A starting point for the MLP variant (``data/mlp_init.npz``): Glorot-scaled normal weights,
    zero biases. Zero itself is a saddle point of an MLP (every hidden weight has a zero gradient
    there), so a run started at zero stays there."""
    rng = np.random.default_rng(seed + 1)
    return {
        "W1": rng.standard_normal((FEATURES, HIDDEN)) * np.sqrt(2.0 / (FEATURES + HIDDEN)),
        "b1": np.zeros(HIDDEN),
        "W2": rng.standard_normal((HIDDEN, CLASSES)) * np.sqrt(2.0 / (HIDDEN + CLASSES)),
        "b2": np.zeros(CLASSES),
    }


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez`` but byte-identical across runs (np.savez stamps the current time)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, _npy_bytes(arrays[name]))


def write(out: Path = DATA_DIR, seed: int = SEED) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, site in enumerate(generate(seed)):
        path = out / f"site_{i}.npz"
        write_npz(path, site)
        written.append(path)
        onehot = np.eye(CLASSES)[site["y"]]
        for name, arr in ((f"site_{i}_X.npy", site["X"]), (f"site_{i}_Y.npy", onehot)):
            np.save(out / name, np.ascontiguousarray(arr, dtype="<f8"), allow_pickle=False)
            written.append(out / name)
    init = out / "mlp_init.npz"
    write_npz(init, {k: np.ascontiguousarray(v, dtype="<f8") for k, v in mlp_init(seed).items()})
    written.append(init)
    return written


if __name__ == "__main__":
    for p in write():
        print(p)
