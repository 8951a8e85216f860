"""``catoptc ledger ...``, ``catoptc solve --ledger/--as``, result hashes and re-runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from catopt_dsl.cli import cli
from catopt_dsl.identity import Identity
from catopt_dsl.ledger import Ledger, verify_consistency, verify_inclusion
from catopt_dsl.ledger.solve_record import result_hash
from catopt_dsl.solver.result import SolveResult

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    Identity.from_seed(bytes([11]) * 32).save(tmp_path / "a.key")
    Identity.from_seed(bytes([12]) * 32).save(tmp_path / "b.key")
    return tmp_path


def _run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in res.output, res.output
    return res.exit_code, res.stdout, res.stderr


def test_append_show_prove_consistency_verify(work: Path) -> None:
    for i in range(5):
        code, out, _ = _run("ledger", "append", "gov.catl", "--identity", "a.key", "--kind", "schema.registered",
                            "--body", json.dumps({"schema": "Allocation", "version": i}))
        assert code == 0 and out.startswith(f"entry {i} appended; tree size {i + 1}")
    code, out, _ = _run("ledger", "show", "gov.catl", "--json")
    shown = json.loads(out)
    assert shown["size"] == 5 and [e["body"]["version"] for e in shown["entries"]] == [0, 1, 2, 3, 4]
    root = bytes.fromhex(shown["root"])

    code, out, _ = _run("ledger", "prove", "gov.catl", "3", "--json")
    p = json.loads(out)
    verify_inclusion(bytes.fromhex(p["leaf_hash"]), 3, 5, [bytes.fromhex(h) for h in p["path"]], root)
    code, out, _ = _run("ledger", "consistency", "gov.catl", "2", "--json")
    c = json.loads(out)
    verify_consistency(2, 5, bytes.fromhex(c["old_root"]), root, [bytes.fromhex(h) for h in c["proof"]])
    assert bytes.fromhex(c["old_root"]) == Ledger.open(work / "gov.catl").root(2)

    code, out, _ = _run("ledger", "verify", "gov.catl")
    assert code == 0 and out.startswith("gov.catl: ok: 5 entries")
    code, out, _ = _run("ledger", "show", "gov.catl", "--entry", "4")
    assert json.loads(out)["body"] == {"schema": "Allocation", "version": 4}

    for args, msg in (
        (("ledger", "prove", "gov.catl", "9"), "leaf 9 is not in a tree of size 5"),
        (("ledger", "consistency", "gov.catl", "0"), "at least 1"),
        (("ledger", "append", "gov.catl", "--identity", "a.key", "--kind", "x", "--body", '{"v": 1.5}'), "floats"),
        (("ledger", "append", "gov.catl", "--identity", "a.key", "--kind", "x", "--body", "[1]"), "JSON object"),
        (("ledger", "append", "gov.catl", "--identity", "missing.key", "--kind", "x"), "no such key file"),
        (("ledger", "verify", "nothere.catl"), "no such ledger"),
    ):
        code, out, err = _run(*args)
        assert code == 1 and msg in err, (args, err)


def test_verify_names_a_tampered_entry_and_a_signed_head_catches_truncation(work: Path) -> None:
    for i in range(4):
        _run("ledger", "append", "gov.catl", "--identity", "b.key", "--kind", "adapter.approved", "--body", f'{{"n": {i}}}')
    code, head, _ = _run("ledger", "show", "gov.catl", "--signed-head", "a.key", "--time", "2026-06-01")
    assert code == 0
    (work / "head.json").write_text(head)
    assert _run("ledger", "verify", "gov.catl", "--head", "head.json")[0] == 0

    led = Ledger.open(work / "gov.catl")
    data = (work / "gov.catl").read_bytes()
    bad = bytearray(data)
    bad[led._offsets[2] + 30] ^= 4
    (work / "gov.catl").write_bytes(bytes(bad))
    code, _, err = _run("ledger", "verify", "gov.catl")
    assert code == 1 and "entry 2 (offset" in err and "FAILED" in err
    appended = _run("ledger", "append", "gov.catl", "--identity", "a.key", "--kind", "x")
    assert appended[0] == 1 and "refusing to append" in appended[2]

    (work / "gov.catl").write_bytes(data[: led._offsets[3]])  # the last entry cut off cleanly
    assert _run("ledger", "verify", "gov.catl")[0] == 0
    code, _, err = _run("ledger", "verify", "gov.catl", "--head", "head.json")
    assert code == 1 and "vouches for 4 entries, but the ledger has 3" in err


def test_solve_records_and_reruns(work: Path) -> None:
    code, out, err = _run("solve", "examples/gpu_fleet.cat", "--json", "--quiet", "--ledger", "gov.catl", "--identity", "a.key")
    assert code == 0 and "recorded as entry 0" in err
    code, _, err = _run("solve", "examples/plan_deltas.cat", "--quiet", "--delta", "tenant_d_joins",
                        "--ledger", "gov.catl", "--identity", "b.key")
    assert code == 0
    led = Ledger.open(work / "gov.catl")
    body = led.entry(0).entry.body
    assert body["status"] == "optimal" and body["mode"] == "admm" and body["spec"]["path"] == "examples/gpu_fleet.cat"
    assert set(body["data"]) == {"fleet", "tenant_a", "tenant_b", "tenant_c", "tenant_d"}
    assert led.entry(1).entry.body["deltas"] == ["tenant_d_joins"]
    assert led.entry(1).entry.actor == Identity.load(work / "b.key").did
    expected = result_hash(_result_from_json(json.loads(out)))
    assert body["result"]["sha256"] == expected  # the recorded hash is the reported result's

    code, out, err = _run("ledger", "verify", "gov.catl", "--rerun")
    assert code == 0 and err.count("result hash matches") == 2, err

    # The data changes under the spec: the re-run says so and names the object.
    csv = work / "examples" / "data" / "gpu_fleet_values.csv"
    rows = csv.read_text().splitlines()
    first = next(i for i, r in enumerate(rows) if r and r[0].isdigit())  # tenant_a's row (after any header)
    rows[first] = ",".join(str(float(v) + 1.0) for v in rows[first].split(","))
    csv.write_text("\n".join(rows) + "\n")
    code, _, err = _run("ledger", "verify", "gov.catl", "--rerun")
    assert code == 1 and "entry 0:" in err and "the data of `tenant_a` changed" in err


def test_a_fixed_rho_solve_is_recorded_and_reruns_fixed(work: Path) -> None:
    code, _, _ = _run("solve", "examples/consensus_lasso.cat", "--quiet", "--no-adaptive-rho", "--rho", "3",
                      "--ledger", "gov.catl", "--identity", "a.key")
    assert code == 0
    _run("solve", "examples/consensus_lasso.cat", "--quiet", "--ledger", "gov.catl", "--identity", "a.key")
    led = Ledger.open(work / "gov.catl")
    fixed, adaptive = led.entry(0).entry.body, led.entry(1).entry.body
    assert fixed["options"]["adaptive_rho"] is False and "adaptive_rho" not in adaptive["options"]
    assert fixed["iterations"] != adaptive["iterations"]
    code, _, err = _run("ledger", "verify", "gov.catl", "--rerun")
    assert code == 0 and err.count("result hash matches") == 2, err


def _result_from_json(d: dict) -> SolveResult:  # type: ignore[type-arg]
    conv = {k: {v: np.asarray(x) for v, x in vs.items()} for k, vs in d["objects"].items()}
    shared = {k: {v: np.asarray(x) for v, x in vs.items()} for k, vs in d["shared"].items()}
    return SolveResult(d["status"], d["objective"], d["iterations"], None, None, 0.0, conv, shared)


def test_a_recorded_result_that_does_not_reproduce_is_reported(work: Path) -> None:
    _run("solve", "examples/gpu_fleet.cat", "--quiet", "--centralized", "--ledger", "gov.catl", "--identity", "a.key")
    led = Ledger.open(work / "gov.catl")
    body = json.loads(json.dumps(led.entry(0).entry.body))
    body["result"]["sha256"] = "0" * 64  # an insider records a result the spec does not produce
    led.append(Identity.load(work / "a.key"), "solve.recorded", body)
    code, _, err = _run("ledger", "verify", "gov.catl", "--rerun")
    assert code == 1 and "entry 1:" in err and "differs from the recorded" in err and "entry 0: re-ran" in err


def test_result_hash_is_rounding_stable_but_not_blind() -> None:
    def res(x: list[float], obj: float = -3.25) -> SolveResult:
        return SolveResult("optimal", obj, 10, 1e-6, 1e-6, 0.1, {"a": {"x": np.array(x)}}, {"s": {"z": np.array(2.0)}})

    base = result_hash(res([1.0, 0.0, 2.5e-3]))
    assert result_hash(res([1.0 + 1e-13, -0.0, 2.5e-3 * (1 - 1e-12)], -3.25 + 1e-13)) == base
    assert result_hash(res([1.0, 1e-17, 2.5e-3])) == base  # noise around zero
    assert result_hash(res([1.0, 0.0, 2.5e-3 * 1.001])) != base
    assert result_hash(res([1.0, 0.0, 2.5e-3], -3.26)) != base
    other = res([1.0, 0.0, 2.5e-3])
    other.status = "max_iterations"
    assert result_hash(other) != base
    extra = res([1.0, 0.0, 2.5e-3])
    extra.objects["b"] = {"x": np.zeros(1)}
    assert result_hash(extra) != base


def test_solve_as_a_tenant(work: Path) -> None:
    a, b = Identity.load(work / "a.key").did, Identity.load(work / "b.key").did
    owners = {"owners": {"tenant_a": a, "tenant_b": b, "tenant_c": b, "tenant_d": b}}
    (work / "owners.json").write_text(json.dumps(owners))
    code, out, _ = _run("solve", "examples/gpu_fleet.cat", "--json", "--quiet", "--owners", "owners.json", "--as", a)
    assert code == 0
    view = json.loads(out)
    assert set(view["objects"]) == {"tenant_a"} and view["status"] == "optimal"
    code, full, _ = _run("solve", "examples/gpu_fleet.cat", "--json", "--quiet")
    assert json.loads(full)["objects"]["tenant_a"] == view["objects"]["tenant_a"]
    code, out, _ = _run("solve", "examples/gpu_fleet.cat", "--json", "--quiet", "--owners", "owners.json", "--as", b)
    assert set(json.loads(out)["objects"]) == {"tenant_b", "tenant_c", "tenant_d"}

    # Families bind every member; shared variables are always shown.
    s = Identity.from_seed(bytes([13]) * 32).did
    (work / "fam.json").write_text(json.dumps({"owners": {"tenant": s}}))
    code, out, _ = _run("solve", "examples/consensus_lasso.cat", "--json", "--quiet", "--owners", "fam.json", "--as", s)
    got = json.loads(out)
    assert code == 0 and got["shared"] and all(k.startswith("tenant[") for k in got["objects"]) and len(got["objects"]) == 16

    (work / "typo.json").write_text(json.dumps({"owners": {"tenant_z": a}}))
    assert _run("solve", "examples/gpu_fleet.cat", "--owners", "typo.json", "--as", a)[2].count("no object or family") == 1
    assert _run("solve", "examples/gpu_fleet.cat", "--as", a)[0] == 2
    assert _run("solve", "examples/gpu_fleet.cat", "--owners", "owners.json", "--as", "did:key:zXYZ")[0] == 2
    code, _, err = _run("solve", "examples/gpu_fleet.cat", "--owners", "owners.json", "--as", s)
    assert code == 1 and "owns no object" in err
    assert _run("solve", "examples/gpu_fleet.cat", "--ledger", "x.catl")[0] == 2


def test_a_ledger_that_cannot_be_written_loses_no_result(work: Path) -> None:
    (work / "bad.catl").write_bytes(b"garbage!")
    code, out, err = _run("solve", "examples/gpu_fleet.cat", "--json", "--quiet", "--ledger", "bad.catl", "--identity", "a.key")
    assert code == 1 and "not a catopt ledger" in err
    assert (work / "bad.catl").read_bytes() == b"garbage!"
    assert json.loads(out)["status"] == "optimal"  # the result was reported before the record failed
    code, _, err = _run("solve", "examples/gpu_fleet.cat", "--quiet", "--ledger", "x.catl", "--identity", "nokey.key")
    assert code == 1 and "no such key file" in err and not (work / "x.catl").exists()  # checked before solving
