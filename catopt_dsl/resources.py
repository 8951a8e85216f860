"""Where the grammar, the templates and the native runtimes live: inside the installed wheel, or in
the source tree.

The wheel force-includes `grammar/`, `templates/`, `native/` and `docs/errors.md` as `catopt_dsl/_data/...`; an editable
install (or a checkout on `PYTHONPATH`) has no `_data`, so we fall back to the repository's top-level
folders.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    bundled = _PKG / "_data" / name
    if bundled.is_dir():
        return bundled
    source = _PKG.parent / name
    if source.is_dir():
        return source
    raise FileNotFoundError(f"catopt_dsl is missing its {name}/ folder (looked in {bundled} and {source})")


def grammar_dir() -> Path:
    return _find("grammar")


def grammar_path() -> Path:
    return grammar_dir() / "catopt.lark"


def template_dir() -> Path:
    return _find("templates")


def starter_dir() -> Path:
    """The plan and data `catoptc init` writes."""
    return template_dir() / "starter"


def errors_doc_path() -> Path:
    """docs/errors.md, which `catoptc explain` prints from."""
    return _find("docs") / "errors.md"
def native_dir() -> Path:
    """The static native runtimes (``native/rust``, ``native/cpp``) that the backends copy."""
    return _find("native")
