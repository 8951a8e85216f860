"""Writes the (deliberately broken) data files the bad-spec corpus loads, deterministically.

Run ``python tests/cases/bad/make_bad_data.py``; the outputs are committed next to the cases.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"


def main() -> None:
    DATA.mkdir(exist_ok=True)
    # Well-formed arrays whose *shapes* are wrong for the cases that load them.
    np.save(DATA / "m23.npy", np.arange(6, dtype="<f8").reshape(2, 3))
    np.save(DATA / "stack_3x4.npy", np.arange(12, dtype="<f8").reshape(3, 4))
    # A valid (4, 3) stack, so the case that loads it fails only for its own reason.
    np.save(DATA / "stack_4x3.npy", np.arange(12, dtype="<f8").reshape(4, 3))
    # Non-finite values.
    np.save(DATA / "nan.npy", np.array([1.0, np.nan, 3.0], dtype="<f8"))
    (DATA / "inf.csv").write_bytes(b"1.0,2.0,3.0\n4.0,inf,6.0\n")
    # Unreadable: a .npy name holding text, and a CSV with a word in a cell.
    (DATA / "garbage.npy").write_bytes(b"this is not a numpy file\n")
    (DATA / "words.csv").write_bytes(b"1.0,2.0,3.0\n4.0,five,6.0\n")


if __name__ == "__main__":
    main()
