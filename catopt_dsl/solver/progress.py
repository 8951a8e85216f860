"""Terminal progress for ``solve(..., progress=...)``.

The callback receives one dict per iteration with keys ``iteration``, ``r_prim``, ``r_dual``,
``rho`` and ``objective`` (floats). :class:`ProgressPrinter` prints a header once and then a row
every ``every`` iterations (and always for iteration 1).
"""

from __future__ import annotations

import sys
from typing import TextIO

__all__ = ["ProgressPrinter", "format_row", "HEADER"]

HEADER = f"{'iter':>6}  {'r_prim':>10}  {'r_dual':>10}  {'rho':>9}  {'objective':>14}"


def format_row(row: dict[str, float]) -> str:
    """One fixed-width line for a progress dict."""
    return (
        f"{int(row['iteration']):>6}  {row['r_prim']:>10.3e}  {row['r_dual']:>10.3e}  "
        f"{row['rho']:>9.2e}  {row['objective']:>14.6e}"
    )


class ProgressPrinter:
    """A ``progress`` callback that prints a table row every ``every`` iterations."""

    def __init__(self, every: int = 10, stream: TextIO | None = None) -> None:
        self.every = max(1, int(every))
        self.stream = stream
        self._header_done = False

    def __call__(self, row: dict[str, float]) -> None:
        stream = self.stream if self.stream is not None else sys.stderr
        it = int(row["iteration"])
        if it != 1 and it % self.every != 0:
            return
        if not self._header_done:
            print(HEADER, file=stream)
            self._header_done = True
        print(format_row(row), file=stream)
