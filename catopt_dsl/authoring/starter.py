"""`catoptc init [DIR]`: a starter plan with its data, ready to check, solve and compile.

The files ship in the wheel under ``templates/starter/`` (:func:`catopt_dsl.resources.starter_dir`)
and are copied as they are. Nothing the user has is overwritten: every file is created with
``O_EXCL``, and if one already exists the files written by this run are removed again.
"""

from __future__ import annotations

import os
from pathlib import Path

from catopt_dsl.resources import starter_dir


class Refused(Exception):
    """``init`` would overwrite these files (relative to the target folder); nothing was written."""

    def __init__(self, existing: tuple[str, ...]) -> None:
        super().__init__(", ".join(existing))
        self.existing = existing


def starter_files() -> dict[str, bytes]:
    """Relative path -> contents of every file of the starter plan."""
    root = starter_dir()
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def write_starter(folder: Path) -> list[Path]:
    """Write the starter plan into ``folder`` (created if missing); the paths written, in order.

    Raises :class:`Refused` when any of the files exists (checked first, and again by ``O_EXCL``
    while writing, so a file that appears meanwhile is not overwritten either), and ``OSError`` when
    the folder cannot be written; either way the files this call created are removed again.
    """
    files = starter_files()
    existing = tuple(rel for rel in files if (folder / rel).exists() or (folder / rel).is_symlink())
    if existing:
        raise Refused(existing)
    written: list[Path] = []
    try:
        for rel, data in files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            written.append(path)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
    except FileExistsError as exc:
        _remove(written)
        raise Refused((Path(exc.filename).relative_to(folder).as_posix(),)) from None
    except OSError:
        _remove(written)
        raise
    return written


def _remove(paths: list[Path]) -> None:
    for p in reversed(paths):
        try:
            p.unlink()
        except OSError:
            pass
