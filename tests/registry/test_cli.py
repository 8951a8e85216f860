"""``catoptc schema ...``, ``catoptc registry ...`` and ``catoptc check --registry``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from registry_server import running_server

from catopt_dsl.cli import main

ROOT = Path(__file__).resolve().parents[2]

FLEET = """catopt 1;

schema Allocation v{version} {{
    hours: float[3];
{extra}}}

SharedVariables fleet {{
    param capacity: float[3] = [20, 12, 8];
}}

LocalProblem tenant_a {{
    var x: float[3];
    minimize sum_squares(x - 5);
    subject to {{ x >= 0; }}
}}

Morphism a_alloc : tenant_a -> fleet carries Allocation v{version} {{ hours = x;{fill} }}
Limit capacity_limit on fleet {{ sum(*.hours) <= capacity; }}
Colimit plan of fleet;
"""


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env={"CATOPT_REGISTRY": "", **(env or {})})


def spec(folder: Path, version: int, extra: str = "", name: str = "fleet.cat", fill: str = "") -> Path:
    path = folder / name
    path.write_text(FLEET.format(version=version, extra=extra, fill=fill), encoding="utf-8")
    return path


V1_ONLY = "catopt 1;\nschema Allocation v1 {\n    hours: float[3];\n}\n"


def test_register_defaults_beside_the_spec_and_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    r = cli("schema", "register", "examples/schemas/common.cat")
    assert r.exit_code == 0, r.output
    db = tmp_path / "examples" / "schemas" / "catopt-registry.db"
    assert db.is_file()
    assert "Allocation v1: registered as version 1" in r.output and "Allocation v2: registered as version 2" in r.output
    again = cli("schema", "register", "examples/schemas/common.cat")
    assert again.exit_code == 0 and "Allocation v2: already registered as version 2" in again.output
    listed = cli("schema", "list", "--registry", str(db))
    assert listed.exit_code == 0 and "Allocation" in listed.output and "versions 1, 2" in listed.output
    # $CATOPT_REGISTRY is the default when set
    env = cli("schema", "list", env={"CATOPT_REGISTRY": str(db)})
    assert env.exit_code == 0 and "ComputeUsage" in env.output
    shown = cli("schema", "show", "Allocation", "--registry", str(db))
    assert shown.exit_code == 0
    assert "schema Allocation v2 {\n    hours: float[3];\n    priority: float = 0.0;\n}" in shown.output
    assert "schema Allocation v1 {" in cli("schema", "show", "Allocation", "1", "--registry", str(db)).output
    diff = cli("schema", "diff", "Allocation", "1", "2", "--registry", str(db))
    assert diff.exit_code == 0, diff.output
    assert "+   1  priority: float = 0.0" in diff.output and "BACKWARD ok, FORWARD ok, FULL ok" in diff.output


def test_register_reports_violations_as_diagnostics(tmp_path: Path) -> None:
    db = str(tmp_path / "r.db")
    (tmp_path / "v1.cat").write_text(V1_ONLY, encoding="utf-8")
    assert cli("schema", "register", str(tmp_path / "v1.cat"), "--registry", db).exit_code == 0
    bad = tmp_path / "v2.cat"
    bad.write_text("catopt 1;\nschema Allocation v2 {\n    hours: float[3];\n    tenant: int;\n}\n", encoding="utf-8")
    r = cli("schema", "register", str(bad), "--registry", db)
    assert r.exit_code == 1
    assert "v2.cat:4:5: error[E0801]: `Allocation` v2 is not BACKWARD compatible with v1: field 1 `tenant`" in r.output
    assert "4 |     tenant: int;" in r.output and "= note: rule BACKWARD (the latest version)" in r.output
    check = cli("schema", "check", str(bad), "--registry", db)
    assert check.exit_code == 1 and "error[E0801]" in check.output and "INCOMPATIBLE (BACKWARD)" in check.output
    forward = cli("schema", "check", str(bad), "--registry", db, "--mode", "FORWARD")
    assert forward.exit_code == 0, forward.output
    assert "compatible (FORWARD), not registered yet" in forward.output
    skip = tmp_path / "v3.cat"
    skip.write_text("catopt 1;\nschema Allocation v3 {\n    hours: float[3];\n}\n", encoding="utf-8")
    r3 = cli("schema", "register", str(skip), "--registry", db)
    assert r3.exit_code == 1 and "error[E0804]" in r3.output and "next version of subject `Allocation` is 2" in r3.output
    drift = tmp_path / "drift.cat"
    drift.write_text("catopt 1;\nschema Allocation v1 {\n    hours: float[2];\n}\n", encoding="utf-8")
    r4 = cli("schema", "check", str(drift), "--registry", db)
    assert r4.exit_code == 1 and "error[E0802]" in r4.output and "field 0 is" in r4.output
    assert cli("schema", "list", "--registry", db).output.count("Allocation") == 1


def test_check_registry_accepts_v2_only_when_the_mode_allows(tmp_path: Path) -> None:
    """A Morphism carrying Allocation v2 to a block whose readers are registered at v1."""
    db = str(tmp_path / "r.db")
    (tmp_path / "v1.cat").write_text(V1_ONLY, encoding="utf-8")
    assert cli("schema", "register", str(tmp_path / "v1.cat"), "--registry", db).exit_code == 0
    plain = tmp_path / "plain"
    plain.mkdir()
    # v2 without a default for the new field: BACKWARD (the default) refuses it
    no_default = spec(plain, 2, "    priority: float;\n", fill=" priority = 1;")
    assert cli("check", str(no_default)).exit_code == 0, "without --registry the plan checks"
    r = cli("check", str(no_default), "--registry", db)
    assert r.exit_code == 1
    assert "error[E0801]" in r.output and "`Allocation` v2 is not BACKWARD compatible with v1" in r.output
    assert "carries Allocation v2" in r.output  # the caret is on the morphism's schema reference
    js = cli("check", str(no_default), "--registry", db, "--format", "json")
    assert js.exit_code == 1 and json.loads(js.output)[0]["code"] == "E0801"
    # FORWARD allows it (old readers skip the new field)
    assert cli("registry", "config", "FORWARD", "--subject", "Allocation", "--registry", db).exit_code == 0
    ok = cli("check", str(no_default), "--registry", db)
    assert ok.exit_code == 0, ok.output
    # with a default, BACKWARD allows it too
    assert cli("registry", "config", "--subject", "Allocation", "--unset", "--registry", db).exit_code == 0
    with_default = spec(plain, 2, "    priority: float = 0;\n", name="fleet2.cat")
    assert cli("check", str(with_default), "--registry", db).exit_code == 0
    # a version the registry holds with other content, and a schema it has never seen
    other_v1 = spec(plain, 1, "    extra: float = 1;\n", name="fleet3.cat")
    r = cli("check", str(other_v1), "--registry", db)
    assert r.exit_code == 1 and "error[E0802]" in r.output
    unknown = cli("check", str(ROOT / "examples" / "plan_deltas.cat"), "--registry", db)
    assert unknown.exit_code == 0 and unknown.output.count("warning[E0803]") == 1


def test_check_registry_through_the_rest_api(tmp_path: Path) -> None:
    db = str(tmp_path / "r.db")
    (tmp_path / "v1.cat").write_text(V1_ONLY, encoding="utf-8")
    with running_server(db) as url:
        assert cli("schema", "register", str(tmp_path / "v1.cat"), "--registry", url).exit_code == 0
        bad = spec(tmp_path, 2, "    priority: float;\n", fill=" priority = 1;")
        r = cli("check", str(bad), "--registry", url)
        assert r.exit_code == 1 and "error[E0801]" in r.output
        good = spec(tmp_path, 2, "    priority: float = 0;\n", name="good.cat")
        assert cli("check", str(good), "--registry", url).exit_code == 0
        assert "Allocation" in cli("schema", "list", "--registry", url).output
        assert cli("registry", "config", "FULL", "--registry", url).exit_code == 0
        assert "global: FULL" in cli("registry", "config", "--registry", url).output


def test_registry_errors_are_one_line_with_exit_codes(tmp_path: Path) -> None:
    missing = cli("schema", "list", "--registry", str(tmp_path / "none.db"))
    assert missing.exit_code == 2 and missing.output.startswith("catoptc: error: no registry at")
    assert not (tmp_path / "none.db").exists()
    down = cli("check", str(ROOT / "examples" / "gpu_fleet.cat"), "--registry", "http://127.0.0.1:9")
    assert down.exit_code == 2 and "cannot reach the registry" in down.output and "Traceback" not in down.output
    db = str(tmp_path / "r.db")
    (tmp_path / "v1.cat").write_text(V1_ONLY, encoding="utf-8")
    cli("schema", "register", str(tmp_path / "v1.cat"), "--registry", db)
    nf = cli("schema", "show", "Nope", "--registry", db)
    assert nf.exit_code == 1 and nf.output.strip() == "catoptc: error: Subject 'Nope' not found."
    assert cli("registry", "config", "SIDEWAYS", "--registry", db).exit_code == 1
    assert cli("schema", "show", "Allocation", "x", "--registry", db).exit_code == 2
    broken = tmp_path / "broken.cat"
    broken.write_text("catopt 1;\nschema A v1 { x: float }\n", encoding="utf-8")
    r = cli("schema", "register", str(broken), "--registry", db)
    assert r.exit_code == 1 and "error[E0001]" in r.output


def test_registry_shows_schemas_and_contracts(tmp_path: Path) -> None:
    db = str(tmp_path / "r.db")
    (tmp_path / "v1.cat").write_text(V1_ONLY, encoding="utf-8")
    cli("schema", "register", str(tmp_path / "v1.cat"), "--registry", db)
    c1 = tmp_path / "torch.json"
    c1.write_text(json.dumps({"name": "torch_units", "version": "1.2.0", "kind": "unit-adapter", "platforms": ["torch"],
                              "units": {"gpu_hours": "h"}, "requirements": {}, "api_version": 1}), encoding="utf-8")
    r = cli("registry", "contract", "register", str(c1), "--registry", db)
    assert r.exit_code == 0 and "contract:torch_units 1.2.0: registered as version 1" in r.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "version": "1.0", "kind": "k", "platforms": [], "units": {},
                               "requirements": {}, "api_version": 1}), encoding="utf-8")
    rb = cli("registry", "contract", "register", str(bad), "--registry", db)
    assert rb.exit_code == 1 and "error[42201]" in rb.output and "contract.platforms" in rb.output
    listed = cli("registry", "list", "--registry", db, "--json")
    rows = json.loads(listed.output)
    assert [(x["subject"], x["kind"], x["latest"]) for x in rows] == [
        ("Allocation", "schema", "v1"), ("contract:torch_units", "contract", "1.2.0")]
    assert "contract:torch_units" not in cli("schema", "list", "--registry", db).output
    shown = cli("registry", "show", "contract:torch_units", "--registry", db)
    assert shown.exit_code == 0 and '"name": "torch_units"' in shown.output
    resolved = json.loads(cli("registry", "contract", "resolve", "torch_units", "^1", "--registry", db).output)
    assert resolved["contract"]["version"] == "1.2.0"
    assert "torch_units 1.2.0" in cli("registry", "contract", "list", "--platform", "torch", "--registry", db).output
    assert cli("registry", "contract", "resolve", "torch_units", "^2", "--registry", db).exit_code == 1
    gone = cli("registry", "delete", "Allocation", "1", "--registry", db)
    assert gone.exit_code == 0 and "soft-deleted version(s) 1" in gone.output
    assert "(deleted)" in cli("registry", "list", "--deleted", "--registry", db).output
