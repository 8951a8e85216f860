"""The one gate through which the compiler reads a file: the root spec, every import, every ``load()``.

The rule (docs/language.md, "Which files a spec may read"):

1. **Containment.** After resolving ``..`` and symbolic links, the file must lie inside one of the
   allowed folders: the folder of the (resolved) root spec and every ``--allow-path`` folder. A
   file outside is refused before it is opened, so its content can never reach a diagnostic.
2. **Regular files only.** ``os.stat`` first: a directory, FIFO, character or block device or
   socket is refused before ``open`` (a FIFO would block, ``/dev/zero`` never ends). The file is
   opened with ``O_NONBLOCK`` anyway, and ``fstat`` of the open descriptor must show the same
   regular file, so a FIFO swapped in between the two calls cannot block either.
3. **Size cap before reading.** A file larger than the caller's cap is refused from its ``stat``
   size; the read itself takes at most ``cap + 1`` bytes, so a file that grows (or lies about its
   size, like files in ``/proc``) cannot make it read more.

Callers turn a :class:`ReadError` into their own diagnostic (E0005 for the root, E0104/E0108 for an
import, E0601/E0602/E0605 for ``load()``) and name the path as the user wrote it.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

# Not every platform has these; 0 leaves the flag out.
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
_CHUNK = 1 << 20


class Refusal(str, Enum):
    MISSING = "missing"
    OUTSIDE = "outside"
    DIRECTORY = "directory"
    NOT_REGULAR = "not_regular"
    TOO_LARGE = "too_large"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class ReadError:
    """Why a file was not read. ``reason`` never contains the file's content or its resolved path."""

    kind: Refusal
    reason: str


@dataclass(frozen=True)
class Folders:
    """The folders a compilation may read from (resolved, symlinks followed)."""

    roots: tuple[Path, ...]

    @staticmethod
    def of(folders: Iterable[str | Path]) -> Folders:
        """These folders, resolved (one that cannot be resolved is left out)."""
        roots: list[Path] = []
        for p in folders:
            r = resolve(p)
            if isinstance(r, Path) and r not in roots:
                roots.append(r)
        return Folders(tuple(roots))

    @staticmethod
    def for_spec(spec: str | Path, allow: Iterable[str | Path] = ()) -> Folders:
        """The resolved root spec's folder, then every ``--allow-path`` folder."""
        return Folders.of((_folder_of(Path(spec)), *allow))

    def contains(self, resolved: Path) -> bool:
        return any(resolved == r or resolved.is_relative_to(r) for r in self.roots)


def _folder_of(spec: Path) -> Path:
    r = resolve(spec)
    return (r if isinstance(r, Path) else Path(os.path.abspath(spec))).parent


def resolve(path: str | Path) -> Path | ReadError:
    """``path`` with ``..`` and every symbolic link resolved (the file need not exist)."""
    try:
        return Path(os.path.realpath(path))
    except ValueError:  # an embedded NUL byte
        return ReadError(Refusal.UNREADABLE, "the path contains a NUL byte")
    except OSError as exc:  # a symlink loop on some platforms, a name too long
        return ReadError(Refusal.UNREADABLE, _why(exc))


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symbolic links loop"
    return exc.strerror or type(exc).__name__


def _kind_of(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_file(path: str | Path, folders: Folders | None, max_bytes: int) -> Path | ReadError:
    """Everything :func:`read_file` checks before opening: the resolved path, or why not."""
    resolved = resolve(path)
    if isinstance(resolved, ReadError):
        return resolved
    if folders is not None and not folders.contains(resolved):
        return ReadError(Refusal.OUTSIDE, "it resolves outside the allowed folders")
    try:
        st = os.stat(resolved)
    except FileNotFoundError:
        return ReadError(Refusal.MISSING, "no such file")
    except (OSError, ValueError) as exc:
        return ReadError(Refusal.UNREADABLE, _why(exc) if isinstance(exc, OSError) else str(exc))
    if stat.S_ISDIR(st.st_mode):
        return ReadError(Refusal.DIRECTORY, "it is a directory")
    if not stat.S_ISREG(st.st_mode):
        return ReadError(Refusal.NOT_REGULAR, f"it is {_kind_of(st.st_mode)}, not a regular file")
    if st.st_size > max_bytes:
        return ReadError(Refusal.TOO_LARGE, _too_large(st.st_size, max_bytes))
    return resolved


def _too_large(size: int, cap: int) -> str:
    return f"it is {_mib(size)}; the limit is {_mib(cap)}"


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


def read_file(path: str | Path, folders: Folders | None, max_bytes: int) -> bytes | ReadError:
    """The bytes of ``path`` if it is a regular file inside ``folders`` of at most ``max_bytes``.

    ``folders=None`` skips containment (only for a file the user named on the command line).
    """
    checked = check_file(path, folders, max_bytes)
    if isinstance(checked, ReadError):
        return checked
    try:
        before = os.stat(checked)
        fd = os.open(checked, os.O_RDONLY | _O_NONBLOCK | _O_NOCTTY | _O_CLOEXEC | _O_BINARY)
    except FileNotFoundError:
        return ReadError(Refusal.MISSING, "no such file")
    except OSError as exc:
        return ReadError(Refusal.UNREADABLE, _why(exc))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
            return ReadError(Refusal.NOT_REGULAR, "it changed into something other than a regular file while being opened")
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes:
            chunk = os.read(fd, min(_CHUNK, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            return ReadError(Refusal.TOO_LARGE, f"it is larger than the limit of {_mib(max_bytes)}")
        return b"".join(chunks)
    except OSError as exc:
        return ReadError(Refusal.UNREADABLE, _why(exc))
    finally:
        os.close(fd)
