"""Source positions shared by every compiler stage."""

from __future__ import annotations

from typing import NamedTuple


class Span(NamedTuple):
    """A half-open region of a source file; lines and columns are 1-based.

    A NamedTuple rather than a frozen dataclass: the parser makes one for every node, and tuple
    construction is several times cheaper than a frozen dataclass's ``object.__setattr__`` calls.
    """

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    @staticmethod
    def unknown(file: str = "<unknown>") -> Span:
        return Span(file, 1, 1, 1, 1)

    def merge(self, other: Span) -> Span:
        """The smallest span covering both (assumes the same file)."""
        start = min((self.line, self.col), (other.line, other.col))
        end = max((self.end_line, self.end_col), (other.end_line, other.end_col))
        return Span(self.file, start[0], start[1], end[0], end[1])

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"
