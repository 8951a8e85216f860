"""Generated specs for compiler benchmarks: N LocalProblems written out (not as one family), or one family."""

from __future__ import annotations

from pathlib import Path


def written_out(n: int, dim: int = 4) -> str:
    """A sharing plan with ``n`` tenants, each its own LocalProblem and Morphism (no families)."""
    lines = [
        "catopt 1;",
        f"schema Usage v1 {{ hours: float[{dim}]; }}",
        f"SharedVariables fleet {{ param capacity: float[{dim}] = [{', '.join(str(10.0 * n) for _ in range(dim))}]; }}",
    ]
    for i in range(n):
        demand = ", ".join(f"{1 + (i * 7 + k) % 5}.0" for k in range(dim))
        lines.append(
            f"LocalProblem t{i} on cuda {{ param demand: float[{dim}] = [{demand}]; var x: float[{dim}]; "
            f"minimize sum_squares(x - demand) - 0.5 * sum(x); subject to {{ x >= 0; x <= demand; }} }}"
        )
        lines.append(f"Morphism m{i} : t{i} -> fleet carries Usage v1 {{ hours = x; }}")
    lines.append("Limit capacity_limit on fleet { sum(*.hours) <= capacity; }")
    return "\n".join(lines) + "\n"


def family(n: int, dim: int = 4) -> str:
    """The same plan as one family of ``n`` members."""
    return (
        "catopt 1;\n"
        f"schema Usage v1 {{ hours: float[{dim}]; }}\n"
        f"SharedVariables fleet {{ param capacity: float[{dim}] = [{', '.join(str(10.0 * n) for _ in range(dim))}]; }}\n"
        f"LocalProblem t[i in 0..{n - 1}] on cuda {{ param demand: float[{dim}] = [{', '.join('1.0 + i / 1000' for _ in range(dim))}]; "
        f"var x: float[{dim}]; minimize sum_squares(x - demand) - 0.5 * sum(x); subject to {{ x >= 0; x <= demand; }} }}\n"
        f"Morphism m[i in 0..{n - 1}] : t[i] -> fleet carries Usage v1 {{ hours = x; }}\n"
        "Limit capacity_limit on fleet { sum(*.hours) <= capacity; }\n"
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
    return "catopt 1;\n" + "".join(
        f"LocalProblem a{k} {{ var x: float[{terms}]; minimize {body}; }}\n" for k in range(items)
    )


def big_arrays(params: int, elements: int) -> str:
    """``params`` LocalProblems, each with an array literal of ``elements`` numbers."""
    values = ", ".join(f"{(i * 7) % 13}.5" for i in range(elements))
    return "catopt 1;\n" + "".join(
        f"LocalProblem a{k} {{ param p: float[{elements}] = [{values}]; var x: float; minimize square(x - p[0]); }}\n"
        for k in range(params)
    )


def forward_references(n: int) -> str:
    """One LocalProblem whose ``n`` params each read the next one, declared later: ``n`` unknown
    names (params must be declared before use), each a diagnostic with a bounded did-you-mean."""
    params = "".join(f"  param p{i}: float = p{i + 1};\n" for i in range(n))
    return f"catopt 1;\nLocalProblem a {{\n{params}  param p{n}: float = 1;\n  var x: float; minimize square(x - p0); }}\n"


def big_family(n: int) -> str:
    """One family of ``n`` members: a few hundred bytes that expand to ``n`` objects."""
    return (
        f"catopt 1;\nLocalProblem t[i in 0..{n - 1}] {{ param d: float[4] = [1.0 + i / 1000, 2, 3, 4]; "
        "var x: float[4]; minimize sum_squares(x - d); subject to { x >= 0; } }\n"
    )
