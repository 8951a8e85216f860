"""The renderer never lets a spec drive the terminal: control characters in echoed source lines,
messages and quoted paths are shown, not executed, and carets stay under the right column."""

from __future__ import annotations

from pathlib import Path

from catopt_dsl.compile import analyze
from catopt_dsl.diagnostics import render_text, visible, visible_line

ESC_TITLE = "\x1b]0;PWNED\x07"
CLEAR = "\x1b[2J"


def _render(path: Path) -> str:
    a = analyze(path)
    return render_text(a.diagnostics, a.sources, color=False)


def test_escape_sequences_in_an_echoed_line_are_shown_not_sent(tmp_path: Path) -> None:
    spec = tmp_path / "t.cat"
    spec.write_text(f"catopt 1;\nLocalProblem a {{ var x: float; minimize square(y); }} // {ESC_TITLE}{CLEAR}\n")
    text = _render(spec)
    assert "\x1b" not in text and "\x07" not in text
    assert "\u241b]0;PWNED\u2407" in text  # the control pictures of ESC and BEL
    # the caret is still under `y` (column 51)
    lines = text.splitlines()
    src = next(i for i, line in enumerate(lines) if "square(y)" in line)
    assert lines[src + 1].index("^") == lines[src].index("square(y)") + len("square(")


def test_control_characters_in_paths_and_file_names_are_escaped(tmp_path: Path) -> None:
    spec = tmp_path / f"evil{ESC_TITLE}.cat"
    spec.write_text(f'catopt 1;\nimport "x{CLEAR}.cat";\nLocalProblem a {{ var x: float; minimize square(x); }}\n')
    text = _render(spec)
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[2J" in text and "\\x1b]0;PWNED\\x07" in text


def test_bidi_overrides_are_neutralised() -> None:
    assert visible_line("a\u202eb\u2066c") == "a\ufffdb\ufffdc"
    assert visible("a\u202eb") == "a\\u{202e}b"


def test_visible_line_keeps_one_character_per_character() -> None:
    raw = "".join(chr(c) for c in range(0xA0)) + "\u2028\ufeff"
    assert len(visible_line(raw)) == len(raw)
    assert all(ch.isprintable() for ch in visible_line(raw))
