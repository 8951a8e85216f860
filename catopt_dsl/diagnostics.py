"""Diagnostics: collected into a sink by every stage, rendered rustc-style or as JSON.

Stages never raise on bad user input; they report a :class:`Diagnostic` and carry on, so one run
shows every problem. The pipeline stops before the next stage when the sink holds errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum

from catopt_dsl.errors import ErrorCode
from catopt_dsl.limits import MAX_DIAGNOSTICS, MAX_SUGGESTIONS
from catopt_dsl.span import Span


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Note:
    kind: str  # "note" or "help"
    message: str
    span: Span | None = None


@dataclass(frozen=True)
class Diagnostic:
    code: ErrorCode
    severity: Severity
    message: str
    span: Span
    notes: tuple[Note, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "message": self.message,
            "file": self.span.file,
            "line": self.span.line,
            "col": self.span.col,
            "end_line": self.span.end_line,
            "end_col": self.span.end_col,
            "notes": [{"kind": n.kind, "message": n.message} for n in self.notes],
        }


class CatoptError(Exception):
    """Raised by the public API when a spec has errors; carries the diagnostics."""

    def __init__(self, diagnostics: Iterable[Diagnostic], sources: SourceMap | None = None) -> None:
        self.diagnostics = tuple(diagnostics)
        self.sources = sources
        text = render_text(self.diagnostics, sources or SourceMap(), color=False)
        super().__init__(text)


@dataclass
class DiagnosticSink:
    """Collects diagnostics; de-duplicates exact repeats (families report once per member)."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    _seen: set[tuple[str, str, Span]] = field(default_factory=set)
    cap: int = MAX_DIAGNOSTICS
    # Did-you-mean searches left in this run (MAX_SUGGESTIONS), shared with child sinks.
    _suggestions: list[int] = field(default_factory=lambda: [MAX_SUGGESTIONS])

    def child(self) -> DiagnosticSink:
        """An empty sink that shares this one's suggestion budget (for nested checks)."""
        return DiagnosticSink(cap=self.cap, _suggestions=self._suggestions)

    def take_suggestion(self) -> bool:
        """Spend one did-you-mean search; False once the run's budget is spent."""
        if self._suggestions[0] <= 0:
            return False
        self._suggestions[0] -= 1
        return True

    def report(
        self,
        code: ErrorCode,
        message: str,
        span: Span,
        *notes: Note,
        severity: Severity = Severity.ERROR,
    ) -> None:
        key = (code.value, message, span)
        if key in self._seen or len(self.diagnostics) >= self.cap:
            return
        self._seen.add(key)
        self.diagnostics.append(Diagnostic(code, severity, message, span, tuple(notes)))

    def error(self, code: ErrorCode, message: str, span: Span, *notes: Note) -> None:
        self.report(code, message, span, *notes)

    def warning(self, code: ErrorCode, message: str, span: Span, *notes: Note) -> None:
        self.report(code, message, span, *notes, severity=Severity.WARNING)

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.diagnostics)

    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.sorted())

    def sorted(self) -> list[Diagnostic]:
        return sorted(
            self.diagnostics,
            key=lambda d: (d.span.file, d.span.line, d.span.col, d.code.value),
        )


def help_(message: str) -> Note:
    return Note("help", message)


def note(message: str, span: Span | None = None) -> Note:
    return Note("note", message, span)


class SourceMap:
    """File name -> text, so the renderer can show the offending line."""

    def __init__(self) -> None:
        self._texts: dict[str, str] = {}

    def add(self, name: str, text: str) -> None:
        self._texts[name] = text

    def line(self, name: str, line: int) -> str | None:
        text = self._texts.get(name)
        if text is None:
            return None
        lines = text.split("\n")
        if 1 <= line <= len(lines):
            return lines[line - 1].rstrip("\r")
        return None


_RED = "\x1b[1;31m"
_YELLOW = "\x1b[1;33m"
_BLUE = "\x1b[1;34m"
_BOLD = "\x1b[1m"
_RESET = "\x1b[0m"


# Characters a terminal acts on instead of showing: C0 and C1 controls, DEL, and the invisible
# formatting characters that reorder or break lines (bidi overrides, line/paragraph separators).
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]")
_INVISIBLE_OR_TAB = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]")


def _picture(m: re.Match[str]) -> str:
    ch = m.group()
    code = ord(ch)
    if ch == "\t":
        return " "
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: U+241B shows ESC
    if code == 0x7F:
        return "\u2421"
    return "\ufffd"


def visible_line(src: str) -> str:
    """A source line safe to echo on a terminal, one character for one: tabs become spaces and
    control or formatting characters their visible pictures, so columns (and carets) stay put."""
    return _INVISIBLE_OR_TAB.sub(_picture, src)


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{{{code:04x}}}"


def visible(text: str) -> str:
    """Any text for the terminal (messages, notes, file names, paths as written in a spec):
    control and formatting characters become ``\\xNN`` / ``\\u{NNNN}`` escapes; newlines and tabs stay
    only where the renderer puts them itself."""
    return _INVISIBLE.sub(_escape, text).replace("\n", "\\n").replace("\t", "\\t")


def render_one(d: Diagnostic, sources: SourceMap, color: bool = False) -> str:
    def c(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    sev_color = _RED if d.severity is Severity.ERROR else _YELLOW
    head = (
        f"{visible(d.span.file)}:{d.span.line}:{d.span.col}: "
        f"{c(sev_color, f'{d.severity.value}[{d.code.value}]')}: {c(_BOLD, visible(d.message))}"
    )
    out = [head]
    src = sources.line(d.span.file, d.span.line)
    if src is not None:
        # Long lines (generated or minified input) are clipped around the caret.
        shown = visible_line(src)
        start_col = d.span.col
        offset = 0
        if len(shown) > 160:
            offset = max(0, start_col - 60)
            shown = ("..." if offset else "") + shown[offset : offset + 120] + "..."
            if offset:
                offset -= 3
        gutter = str(d.span.line)
        pad = " " * len(gutter)
        out.append(f"{pad} {c(_BLUE, '|')}")
        out.append(f"{c(_BLUE, gutter)} {c(_BLUE, '|')} {shown}")
        if d.span.end_line == d.span.line:
            width = max(1, d.span.end_col - d.span.col)
        else:
            width = max(1, len(src) - d.span.col + 1)
        width = min(width, max(1, len(shown) - (start_col - 1 - offset)))
        caret = " " * max(0, start_col - 1 - offset) + "^" + "~" * (width - 1)
        out.append(f"{pad} {c(_BLUE, '|')} {c(sev_color, caret)}")
    for n in d.notes:
        label = c(_BLUE, n.kind) if n.kind == "help" else c(_BOLD, n.kind)
        where = f" ({visible(str(n.span))})" if n.span is not None else ""
        out.append(f"  = {label}: {visible(n.message)}{where}")
    return "\n".join(out)


def render_text(diags: Iterable[Diagnostic], sources: SourceMap, color: bool = False) -> str:
    diags = list(diags)
    parts = [render_one(d, sources, color) for d in diags]
    n_err = sum(1 for d in diags if d.severity is Severity.ERROR)
    n_warn = len(diags) - n_err
    if diags:
        summary = []
        if n_err:
            summary.append(f"{n_err} error{'s' if n_err != 1 else ''}")
        if n_warn:
            summary.append(f"{n_warn} warning{'s' if n_warn != 1 else ''}")
        parts.append(", ".join(summary) + " emitted")
    return "\n\n".join(parts)


def render_json(diags: Iterable[Diagnostic]) -> str:
    return json.dumps([d.to_json() for d in diags], indent=2, sort_keys=True)
