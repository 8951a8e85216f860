"""Syntax errors: all of them, in the user's words, and nothing that follows on from one.

The corpus under tests/cases/syntax/ pins whole outputs; these tests pin the rules behind them.
"""

from __future__ import annotations

import pytest

from catopt_dsl import limits
from catopt_dsl.diagnostics import DiagnosticSink
from catopt_dsl.syntax.parser import parse_text

HEAD = "catopt 1;\n"


def _errors(text: str) -> list:
    sink = DiagnosticSink()
    spec = parse_text(text, "t.cat", sink)
    errors = sink.errors()
    assert (spec is None) == bool(errors) or not errors
    return errors


@pytest.mark.parametrize("name", ["trueish", "minimizer", "integer_count", "floaty", "parameter", "Limits", "subjective", "variance"])
def test_names_that_start_with_a_keyword_are_names(name: str) -> None:
    text = HEAD + f"LocalProblem t {{ param {name}: float = 1; var x: float; minimize square(x - {name}); }}\n"
    assert _errors(text) == []


def test_a_misspelt_keyword_is_one_token_with_a_suggestion() -> None:
    # `parameter` used to lex as the keyword `param` plus a name `eter`, and the error quoted `x`.
    (err,) = _errors(HEAD + "LocalProblem t {\n    parameter x: float = 1;\n    var y: float;\n    minimize square(y);\n}\n")
    assert (err.code.value, err.span.line, err.span.col, err.message) == ("E0001", 3, 5, "unexpected `parameter`")
    assert any(n.message == "did you mean `param`?" for n in err.notes)


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ("subject to { x 0; }", "expected `<=`, `>=`, `==` or an operator"),
        ("minimize x +;", "expected an expression"),
        ("var y;", "expected `:`"),
    ],
)
def test_expected_lists_name_only_what_fits_here(body: str, shown: str) -> None:
    (err,) = _errors(HEAD + f"LocalProblem t {{ var x: float; {body} }}\n")
    expected = [n.message for n in err.notes if n.kind == "note" and n.message.startswith("expected")]
    assert expected == [shown]


def test_no_internal_token_names_in_any_expected_list() -> None:
    # LALR merges states, so Lark's own expected sets list `..`, `)` or `'` where none can go.
    text = HEAD + "LocalProblem t { var x: float; subject to { x 0; sum(x) 1; } minimize x 2; }\n"
    errors = _errors(text)
    assert len(errors) == 3
    for err in errors:
        for n in err.notes:
            assert "__ANON" not in n.message and "`..`" not in n.message and "`'`" not in n.message, n.message
            assert "QUOTE" not in n.message and "RPAR" not in n.message, n.message


def test_every_statement_with_an_error_is_reported() -> None:
    lines = [f"    param p{i}: float = {i} {i};" for i in range(40)]
    text = HEAD + "LocalProblem t {\n" + "\n".join(lines) + "\n    var x: float;\n    minimize square(x);\n}\n"
    errors = _errors(text)
    assert [e.span.line for e in errors] == list(range(3, 43))


def test_a_file_with_a_syntax_error_is_not_checked() -> None:
    # `nope` is an unknown name, but the checker never sees a file that does not parse: a statement
    # the parser skipped could otherwise show up as an unknown name later.
    from catopt_dsl.compile import analyze

    a = analyze("t.cat", text=HEAD + "LocalProblem t { var x: float; minimize square(nope); x >= 0; }\n")
    assert [d.code.value for d in a.diagnostics] == ["E0001"]


def test_recovery_on_junk_is_capped() -> None:
    text = HEAD + "LocalProblem t {\n" + "    = = ; ) ] x y ;\n" * 5000 + "}\n"
    errors = _errors(text)
    assert 100 <= len(errors) <= limits.MAX_DIAGNOSTICS


def test_end_of_file_is_located_at_the_end() -> None:
    text = HEAD + "LocalProblem t {\n    var x: float;\n    minimize square(x);\n"
    (err,) = _errors(text)
    assert (err.span.line, err.span.col, err.message) == (5, 1, "unexpected end of file")
    assert any(n.span is not None and (n.span.line, n.span.col) == (2, 16) for n in err.notes)  # the open `{`


def test_limits_still_stop_the_parse_after_syntax_errors() -> None:
    text = HEAD + "LocalProblem t { var x float; minimize " + "(" * (limits.MAX_BRACKET_DEPTH + 5) + "x; }\n"
    codes = [e.code.value for e in _errors(text)]
    assert codes == ["E0001", "E0004"]
