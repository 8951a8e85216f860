"""Generated specs for compiler benchmarks: N LocalProblems written out (not as one family), or one family.

Every generator writes its spec the way `catoptc fmt` does (one statement per line, four-space
indents): a line count of a generated spec is a count of formatted lines. `canonical()` formats any
other spec the same way.
"""

from __future__ import annotations

from pathlib import Path


def canonical(text: str) -> str:
    """``text`` as `catoptc fmt` writes it (one statement per line); the generators below already
    write that layout, so "lines" in a benchmark are formatted lines. Raises ValueError for a spec
    that does not parse."""
    from catopt_dsl.syntax.format import format_source

    out = format_source(text, "generated.cat")
    if out.text is None:
        raise ValueError("the spec does not parse: " + "; ".join(d.message for d in out.diagnostics[:3]))
    return out.text


def _block(head: str, lines: list[str]) -> str:
    """A top-level block in fmt's layout: `head {`, the lines indented once, `}`, a blank line."""
    return head + " {\n" + "".join(f"    {line}\n" for line in lines) + "}\n"


def _join(header: str, blocks: list[str]) -> str:
    return header + "\n" + "\n".join(blocks)


def _problem(name: str, params: list[str], dim: int) -> str:
    return _block(
        f"LocalProblem {name} on cuda",
        [*params, f"var x: float[{dim}];", "minimize sum_squares(x - demand) - 0.5 * sum(x);", "subject to {",
         "    x >= 0;", "    x <= demand;", "}"],
    )


def _fleet(n: int, dim: int) -> list[str]:
    capacity = ", ".join(str(10.0 * n) for _ in range(dim))
    return [
        _block("schema Usage v1", [f"hours: float[{dim}];"]),
        _block("SharedVariables fleet", [f"param capacity: float[{dim}] = [{capacity}];"]),
    ]


_LIMIT = _block("Limit capacity_limit on fleet", ["sum(*.hours) <= capacity;"])


def written_out(n: int, dim: int = 4) -> str:
    """A sharing plan with ``n`` tenants, each its own LocalProblem and Morphism (no families)."""
    blocks = _fleet(n, dim)
    for i in range(n):
        demand = ", ".join(f"{1 + (i * 7 + k) % 5}.0" for k in range(dim))
        blocks.append(_problem(f"t{i}", [f"param demand: float[{dim}] = [{demand}];"], dim))
        blocks.append(_block(f"Morphism m{i} : t{i} -> fleet carries Usage v1", ["hours = x;"]))
    blocks.append(_LIMIT)
    return _join("catopt 1;\n", blocks)


def family(n: int, dim: int = 4) -> str:
    """The same plan as one family of ``n`` members."""
    demand = ", ".join("1.0 + i / 1000" for _ in range(dim))
    return _join(
        "catopt 1;\n",
        [
            *_fleet(n, dim),
            _problem(f"t[i in 0..{n - 1}]", [f"param demand: float[{dim}] = [{demand}];"], dim),
            _block(f"Morphism m[i in 0..{n - 1}] : t[i] -> fleet carries Usage v1", ["hours = x;"]),
            _LIMIT,
        ],
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# Adversarial shapes for the front end's throughput (bench_compiler: "adversarial shapes")
# ---------------------------------------------------------------------------------------------


def long_sums(items: int, terms: int = 200) -> str:
    """``items`` LocalProblems whose objective is a written-out sum of ``terms`` squares: long
    operator chains just under the nesting limit."""
    body = " + ".join(f"square(x[{i}] - {i})" for i in range(terms))
    return _join("catopt 1;\n", [_block(f"LocalProblem a{k}", [f"var x: float[{terms}];", f"minimize {body};"]) for k in range(items)])


def big_arrays(params: int, elements: int) -> str:
    """``params`` LocalProblems, each with an array literal of ``elements`` numbers."""
    values = ", ".join(f"{(i * 7) % 13}.5" for i in range(elements))
    lines = [f"param p: float[{elements}] = [{values}];", "var x: float;", "minimize square(x - p[0]);"]
    return _join("catopt 1;\n", [_block(f"LocalProblem a{k}", lines) for k in range(params)])


def forward_references(n: int) -> str:
    """One LocalProblem whose ``n`` params each read the next one, declared later: ``n`` unknown
    names (params must be declared before use), each a diagnostic with a bounded did-you-mean."""
    params = [f"param p{i}: float = p{i + 1};" for i in range(n)]
    return _join("catopt 1;\n", [_block("LocalProblem a", [*params, f"param p{n}: float = 1;", "var x: float;", "minimize square(x - p0);"])])


def big_family(n: int) -> str:
    """One family of ``n`` members: a few hundred bytes that expand to ``n`` objects."""
    lines = ["param d: float[4] = [1.0 + i / 1000, 2, 3, 4];", "var x: float[4];", "minimize sum_squares(x - d);", "subject to {", "    x >= 0;", "}"]
    return _join("catopt 1;\n", [_block(f"LocalProblem t[i in 0..{n - 1}]", lines)])
