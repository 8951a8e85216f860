"""`catoptc explain CODE`: the docs/errors.md entry for a diagnostic code.

The text ships inside the wheel (pyproject's force-include puts docs/errors.md under
``catopt_dsl/_data/docs/``; :func:`catopt_dsl.resources.errors_doc_path` finds either copy), so an
installed catoptc explains its codes without the repository.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from catopt_dsl.errors import ErrorCode
from catopt_dsl.resources import errors_doc_path

_HEADING = re.compile(r"^## (E\d{4}): (.+)$", re.MULTILINE)
_CODE = re.compile(r"^[Ee]?(\d{1,4})$")


@dataclass(frozen=True)
class Entry:
    code: str
    title: str
    body: str  # markdown, as in docs/errors.md

    def text(self) -> str:
        return f"{self.code}: {self.title}\n\n{self.body}\n"


@lru_cache(maxsize=1)
def entries() -> dict[str, Entry]:
    """Every section of docs/errors.md, by code."""
    text = errors_doc_path().read_text(encoding="utf-8")
    heads = list(_HEADING.finditer(text))
    out: dict[str, Entry] = {}
    for k, m in enumerate(heads):
        end = heads[k + 1].start() if k + 1 < len(heads) else len(text)
        body = text[m.end() : end].strip()
        body = re.sub(r"\n-{3,}\s*$", "", body).strip()  # the rule that closes a group of sections
        out[m.group(1)] = Entry(m.group(1), m.group(2).strip(), body)
    return out


def normalise(code: str) -> str | None:
    """`e101`, `0101`, `E0101` -> `E0101`; None for something that is not a code."""
    m = _CODE.match(code.strip())
    return f"E{int(m.group(1)):04d}" if m else None


def explain(code: str) -> Entry | None:
    key = normalise(code)
    return entries().get(key) if key is not None else None


def known_codes() -> list[str]:
    return sorted(c.value for c in ErrorCode)
