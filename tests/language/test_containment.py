"""One rule for every file the compiler opens (the root spec, imports, load()): inside the root
spec's folder or an --allow-path folder after resolving links, regular files only, size caps before
reading, and never an echo of a file outside the allowed folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from catopt_dsl import limits
from catopt_dsl.compile import analyze
from catopt_dsl.diagnostics import render_text
from catopt_dsl.files import Folders, ReadError, Refusal, read_file

OK_BODY = "LocalProblem a { var x: float; minimize square(x); }\n"
SECRET = "root:TOPSECRET-LINE:20228:0:99999:7:::\n"


def _spec(folder: Path, body: str, name: str = "main.cat") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("catopt 1;\n" + body, encoding="utf-8")
    return path


def _codes(path: Path, **kw: object) -> tuple[list[str], str]:
    a = analyze(path, **kw)  # type: ignore[arg-type]
    text = render_text(a.diagnostics, a.sources)
    return sorted({d.code.value for d in a.sink.errors()}), text


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    """A secret-looking file and an importable spec outside the spec's folder."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "shadow").write_text(SECRET)
    _spec(folder, "schema Leak v1 { x: float; }\n" + 'LocalProblem b { param p: float[2] = load("data.npy"); var x: float; minimize square(x); }\n', "lib.cat")
    np.save(folder / "data.npy", np.ones(2))
    return folder


def test_import_of_an_absolute_path_outside_is_refused_without_echo(tmp_path: Path, outside: Path) -> None:
    spec = _spec(tmp_path / "spec", f'import "{outside / "shadow"}";\n' + OK_BODY)
    codes, text = _codes(spec)
    assert codes == ["E0108"]
    assert "TOPSECRET" not in text and "root:" not in text
    assert "spec/main.cat:2:1" in text.replace(os.sep, "/") or "main.cat:2:1" in text


@pytest.mark.parametrize("how", ["dotdot", "symlink", "symlinked_folder"])
def test_import_that_resolves_outside_is_refused(tmp_path: Path, outside: Path, how: str) -> None:
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    if how == "dotdot":
        written = "../outside/lib.cat"
    elif how == "symlink":
        os.symlink(outside / "lib.cat", spec_dir / "lib.cat")
        written = "lib.cat"
    else:
        os.symlink(outside, spec_dir / "vendor")
        written = "vendor/lib.cat"
    spec = _spec(spec_dir, f'import "{written}";\n' + OK_BODY)
    codes, text = _codes(spec)
    assert codes == ["E0108"], text
    assert "--allow-path" in text


def test_allow_path_admits_an_import_and_its_loads(tmp_path: Path, outside: Path) -> None:
    spec = _spec(tmp_path / "spec", 'import "../outside/lib.cat";\n' + OK_BODY)
    a = analyze(spec, allow_paths=[outside])
    assert a.ok, render_text(a.diagnostics, a.sources)


def test_an_imported_spec_cannot_load_its_own_neighbours_outside(tmp_path: Path, outside: Path) -> None:
    """Before, an import outside the folder could load() files next to it, bypassing E0605."""
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    # The import itself is inside (a copy), but its data lives outside through a link.
    (spec_dir / "lib.cat").write_text((outside / "lib.cat").read_text())
    os.symlink(outside / "data.npy", spec_dir / "data.npy")
    spec = _spec(spec_dir, 'import "lib.cat";\n' + OK_BODY)
    codes, _ = _codes(spec)
    assert codes == ["E0605"]


def test_load_in_a_subfolder_import_may_reach_the_root_folder(tmp_path: Path) -> None:
    spec_dir = tmp_path / "spec"
    np.save(_mk(spec_dir / "data") / "v.npy", np.ones(2))
    _spec(spec_dir / "lib", 'LocalProblem b { param p: float[2] = load("../data/v.npy"); var x: float; minimize square(x - p[0]); }\n', "b.cat")
    spec = _spec(spec_dir, 'import "lib/b.cat";\n' + OK_BODY)
    a = analyze(spec)
    assert a.ok, render_text(a.diagnostics, a.sources)


def _mk(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.parametrize("site", ["root", "import", "load"])
def test_a_fifo_is_refused_without_blocking(tmp_path: Path, site: str) -> None:
    spec_dir = _mk(tmp_path / "spec")
    os.mkfifo(spec_dir / "pipe.cat")
    os.mkfifo(spec_dir / "pipe.npy")
    if site == "root":
        codes, text = _codes(spec_dir / "pipe.cat")
        assert codes == ["E0005"]
    elif site == "import":
        codes, text = _codes(_spec(spec_dir, 'import "pipe.cat";\n' + OK_BODY))
        assert codes == ["E0104"]
    else:
        codes, text = _codes(_spec(spec_dir, 'LocalProblem a { param p: float[2] = load("pipe.npy"); var x: float; minimize square(x); }\n'))
        assert codes == ["E0602"]
    assert "FIFO" in text


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
@pytest.mark.parametrize("site", ["root", "import", "load"])
def test_dev_zero_by_symlink_is_refused(tmp_path: Path, site: str) -> None:
    spec_dir = _mk(tmp_path / "spec")
    os.symlink("/dev/zero", spec_dir / "zero.cat")
    os.symlink("/dev/zero", spec_dir / "zero.npy")
    if site == "root":
        codes, text = _codes(spec_dir / "zero.cat")
        assert codes == ["E0005"] and "character device" in text
    elif site == "import":
        # Outside the folder once the link is resolved: refused before it is even stat'ed.
        codes, _ = _codes(_spec(spec_dir, 'import "zero.cat";\n' + OK_BODY))
        assert codes == ["E0108"]
    else:
        codes, _ = _codes(
            _spec(spec_dir, 'LocalProblem a { param p: float[2] = load("zero.npy"); var x: float; minimize square(x); }\n'),
            allow_paths=["/dev"],
        )
        assert codes == ["E0602"]


def test_size_caps_are_checked_before_reading(tmp_path: Path) -> None:
    """Sparse files: huge by `stat`, free on disk. Reading them would take seconds and gigabytes."""
    spec_dir = _mk(tmp_path / "spec")
    big_spec = spec_dir / "big.cat"
    with big_spec.open("wb") as fh:
        fh.truncate(limits.MAX_SPEC_BYTES + 1)
    big_npy = spec_dir / "big.npy"
    with big_npy.open("wb") as fh:
        fh.truncate(limits.MAX_DATA_BYTES + 1)
    codes, text = _codes(big_spec)
    assert codes == ["E0005"] and "MiB" in text
    codes, text = _codes(_spec(spec_dir, 'import "big.cat";\n' + OK_BODY))
    assert codes == ["E0104"] and "limit" in text
    codes, text = _codes(_spec(spec_dir, 'LocalProblem a { param p: float[2] = load("big.npy"); var x: float; minimize square(x); }\n'))
    assert codes == ["E0602"] and "limit" in text


def test_read_file_reads_at_most_cap_plus_one(tmp_path: Path) -> None:
    """`/proc`-style files report a size of 0 and then yield more: the read itself is capped."""
    p = tmp_path / "f"
    p.write_bytes(b"x" * 100)
    assert read_file(p, None, 100) == b"x" * 100
    got = read_file(p, None, 99)
    assert isinstance(got, ReadError) and got.kind is Refusal.TOO_LARGE
    proc = Path("/proc/self/status")
    if proc.exists():
        got = read_file(proc, None, 10)
        assert isinstance(got, ReadError) and got.kind is Refusal.TOO_LARGE


def test_folders_resolve_links(tmp_path: Path) -> None:
    real = _mk(tmp_path / "real")
    os.symlink(real, tmp_path / "alias")
    folders = Folders.for_spec(tmp_path / "alias" / "x.cat")
    assert folders.roots == (real.resolve(),)
    assert folders.contains((real / "sub" / "y.cat").resolve())
    assert not folders.contains(tmp_path.resolve())


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000,), }", "claims"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (10,), }", "holds"),
        ("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", "pickle"),
    ],
)
def test_npy_headers_are_checked_before_any_allocation(tmp_path: Path, header: str, why: str) -> None:
    spec_dir = _mk(tmp_path / "spec")
    raw = header.encode("latin1")
    raw += b" " * ((64 - (10 + len(raw) + 1) % 64) % 64) + b"\n"
    data = b"\x93NUMPY\x01\x00" + len(raw).to_bytes(2, "little") + raw + b"\0" * 16
    (spec_dir / "lie.npy").write_bytes(data)
    codes, text = _codes(_spec(spec_dir, 'LocalProblem a { param p: float[2] = load("lie.npy"); var x: float; minimize square(x); }\n'))
    assert codes == ["E0602"] and why in text


def test_a_300_character_load_name_is_a_diagnostic(tmp_path: Path) -> None:
    spec_dir = _mk(tmp_path / "spec")
    name = "a" * 300 + ".npy"
    codes, text = _codes(_spec(spec_dir, f'LocalProblem a {{ param p: float[2] = load("{name}"); var x: float; minimize square(x); }}\n'))
    assert codes in (["E0601"], ["E0602"]), text
