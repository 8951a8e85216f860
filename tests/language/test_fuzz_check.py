"""Hypothesis: mutated examples never make the checker raise (issue: 2,000 cases, no traceback)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catopt_dsl.compile import analyze

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.cat"))
# The 200-site family is the slowest to check; mutations of the others exercise the same code.
SOURCES = [p.read_text() for p in EXAMPLES if p.name != "sites_200.cat"]
TOKENS = [
    "{", "}", "(", ")", "[", "]", ";", ",", ":", "->", "..", "*", "==", "<=", ">=", "@", "'", "-", "+", "/",
    "LocalProblem", "SharedVariables", "Morphism", "Limit", "Colimit", "Functor", "PlanDelta", "schema",
    "var", "param", "minimize", "maximize", "subject to", "carries", "v1", "v9", "on", "via", "in", "add",
    "remove", "set", "migrate", "load(\"data/nope.npy\")", "sqrt(x)", "x", "w", "0", "-1", "1e308", "nan",
    "float[0]", "int", "bool", "true", "\u00e9", "\x00", "\"", "//", "/*", "import \"missing.cat\";",
]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SOURCES))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "dup_line", "swap_lines", "truncate"]))
        n = len(text)
        if n == 0:
            text = draw(st.sampled_from(TOKENS))
            continue
        i = draw(st.integers(0, n - 1))
        if kind == "delete":
            j = min(n, i + draw(st.integers(1, 40)))
            text = text[:i] + text[j:]
        elif kind == "insert":
            text = text[:i] + " " + draw(st.sampled_from(TOKENS)) + " " + text[i:]
        elif kind == "replace":
            j = min(n, i + draw(st.integers(1, 12)))
            text = text[:i] + draw(st.sampled_from(TOKENS)) + text[j:]
        elif kind in ("dup_line", "swap_lines"):
            lines = text.split("\n")
            a = draw(st.integers(0, len(lines) - 1))
            b = draw(st.integers(0, len(lines) - 1))
            if kind == "dup_line":
                lines.insert(b, lines[a])
            else:
                lines[a], lines[b] = lines[b], lines[a]
            text = "\n".join(lines)
        else:
            text = text[:i]
    return text


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_mutated_examples_never_raise(text: str) -> None:
    a = analyze(REPO / "examples" / "mutated.cat", text=text)
    for d in a.diagnostics:
        assert d.span.line >= 1 and d.span.col >= 1
        assert d.code.value.startswith("E")
