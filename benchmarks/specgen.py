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
