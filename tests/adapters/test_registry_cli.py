"""Discovery through entry points, resolution of a spec's requirement, and `catoptc adapters`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import tomllib
from click.testing import CliRunner

from catopt_dsl.adapters import registry
from catopt_dsl.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_own_adapters_are_registered_like_any_other() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["catopt.adapters"]
    found = {i.name: i for i in registry.discover()}
    for name, target in declared.items():
        assert found[name].target == target and found[name].adapter is not None
        assert found[name].adapter.contract.name == name
    assert found["torch"].status == "ok" and found["jax"].status == "ok" and found["cpu"].status == "ok"


def test_resolve_explains_what_is_wrong() -> None:
    ok = registry.resolve("torch >= 1.0", kind="framework")
    assert ok.ok and ok.adapter is registry.get("torch") or ok.adapter.contract.name == "torch"
    too_new = registry.resolve("torch >= 2.0", kind="framework")
    assert not too_new.ok and too_new.message == "adapter `torch` 1.0.0 is installed, but the spec asks for `torch >=2.0`"
    assert "pip install 'catopt-dsl[ml]'" in too_new.help
    typo = registry.resolve("torhc")
    assert typo.message == "no adapter `torhc` is installed"
    assert typo.help.startswith("did you mean `torch`? installed adapters: ") and "cuda 1.0.0 (hardware" in typo.help
    kind = registry.resolve("cuda", kind="framework")
    assert kind.message == "adapter `cuda` is a hardware adapter; `via` names a framework adapter"
    # Installed but without a GPU here still resolves: availability belongs to the machine, not the spec.
    assert registry.resolve("cuda", kind="hardware").ok


def test_cli_list_show_and_errors() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["adapters", "list"])
    assert result.exit_code == 0
    header, *rows = result.output.splitlines()
    assert header.split() == ["NAME", "VERSION", "KIND", "API", "STATUS", "FROM"]
    names = [r.split()[0] for r in rows if not r.startswith(" ")]
    assert {"cpu", "cuda", "jax", "torch"} <= set(names)
    listed = json.loads(runner.invoke(main, ["adapters", "list", "--json"]).output)
    torch_row = next(r for r in listed if r["name"] == "torch")
    assert torch_row["entry_point"] == "catopt_dsl.adapters.torch_adapter:adapter" and torch_row["api_version"] == "1.0"

    shown = runner.invoke(main, ["adapters", "show", "cpu", "--json"])
    data = json.loads(shown.output)
    assert data["contract"]["kind"] == "hardware" and data["available"] is True
    assert data["devices"][0]["capacity"]["memory"]["unit"] == "GiB"
    text = runner.invoke(main, ["adapters", "show", "torch"]).output
    assert "convexity:   convex when the loss declares it" in text and "requires:    torch>=2.0" in text

    unknown = runner.invoke(main, ["adapters", "verify", "torhc"])
    assert unknown.exit_code == 2 and "did you mean `torch`?" in unknown.output
    assert "Traceback" not in unknown.output


def test_loading_the_framework_adapters_loads_no_framework() -> None:
    """Entry points load adapter modules; the frameworks load only when a problem is built.

    (The cuda adapter's availability check does import torch: whether torch sees a GPU is the question.)
    """
    import subprocess

    code = (
        "import sys; import catopt_dsl.adapters.torch_adapter, catopt_dsl.adapters.jax_adapter, catopt_dsl.adapters.cli; "
        "print('torch' in sys.modules, 'jax' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"], out.stderr
