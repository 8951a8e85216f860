"""Semantic versions (semver.org 2.0.0) and the version ranges contracts are resolved with.

Ranges are npm-style, which is what contract authors already write: ``*`` (any), ``1.2.3`` or
``=1.2.3`` (exactly), ``>=1.2.0 <2.0.0`` (every comparator must hold; ``,`` also separates),
``^1.2.3`` (same major; for 0.x, same minor) and ``~1.2.3`` (same minor); partial versions fill
with zeros (``^1.2`` is ``>=1.2.0 <2.0.0``). As in npm, a pre-release such as ``2.0.0-rc.1`` only
matches a range that names a pre-release of the same ``major.minor.patch``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

# The regular expression semver.org recommends (numeric identifiers without leading zeros).
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_PARTIAL = re.compile(r"^(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?(?:-([0-9A-Za-z.-]+))?$")
_COMPARATOR = re.compile(r"^(>=|<=|>|<|=|\^|~)?\s*(.+)$")


class SemverError(ValueError):
    pass


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        m = _SEMVER.match(text)
        if m is None:
            raise SemverError(f"`{text}` is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.4.0)")
        pre = tuple(m.group(4).split(".")) if m.group(4) else ()
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)), pre, m.group(5) or "")

    @property
    def core(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def _key(self) -> tuple[object, ...]:
        # Precedence (semver.org section 11): build metadata is ignored; a pre-release sorts before
        # its release; numeric identifiers compare as numbers and below alphanumeric ones.
        if not self.prerelease:
            return (self.core, 1, ())
        ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease)
        return (self.core, 0, ids)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + self.build
        return text


@dataclass(frozen=True)
class Range:
    """A conjunction of comparators (``op``, version)."""

    text: str
    comparators: tuple[tuple[str, Version], ...]

    @classmethod
    def parse(cls, text: str) -> Range:
        spec = text.strip()
        if spec in ("", "*", "latest", "x"):
            return cls(spec or "*", ())
        comps: list[tuple[str, Version]] = []
        for part in re.split(r"[,\s]+", spec):
            if not part:
                continue
            m = _COMPARATOR.match(part)
            if m is None:  # pragma: no cover - the pattern accepts any non-empty text
                raise SemverError(f"bad version range `{text}`")
            op, ver = m.group(1) or "=", m.group(2)
            comps.extend(_expand(op, ver, text))
        return cls(spec, tuple(comps))

    def matches(self, version: Version) -> bool:
        for op, bound in self.comparators:
            if not _OPS[op](version, bound):
                return False
        if version.prerelease:
            return any(b.prerelease and b.core == version.core for _, b in self.comparators)
        return True


def _partial(text: str, whole: str) -> tuple[list[int | None], tuple[str, ...]]:
    m = _PARTIAL.match(text)
    if m is None:
        raise SemverError(f"bad version `{text}` in range `{whole}`")
    nums = [int(g) if g is not None else None for g in m.group(1, 2, 3)]
    pre = tuple(m.group(4).split(".")) if m.group(4) else ()
    return nums, pre


def _expand(op: str, text: str, whole: str) -> list[tuple[str, Version]]:
    nums, pre = _partial(text, whole)
    major, minor, patch = nums
    assert major is not None
    low = Version(major, minor or 0, patch or 0, pre)
    if op == "^":
        if major > 0 or minor is None:
            high = Version(major + 1, 0, 0)
        elif minor > 0 or patch is None:
            high = Version(0, minor + 1, 0)
        else:
            high = Version(0, 0, (patch or 0) + 1)
        return [(">=", low), ("<", high)]
    if op == "~":
        high = Version(major + 1, 0, 0) if minor is None else Version(major, minor + 1, 0)
        return [(">=", low), ("<", high)]
    if op == "=" and (minor is None or patch is None):  # `1.2` means any 1.2.x
        high = Version(major + 1, 0, 0) if minor is None else Version(major, minor + 1, 0)
        return [(">=", low), ("<", high)]
    return [(op, low)]


_OPS = {
    "=": lambda v, b: v == b,
    ">": lambda v, b: v > b,
    ">=": lambda v, b: v >= b,
    "<": lambda v, b: v < b,
    "<=": lambda v, b: v <= b,
}
