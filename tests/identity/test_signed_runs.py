"""A plan whose spec names owners always runs signed: distributed and Ray runs need the owners'
keys (``catoptc solve --keys``), a run without them is a usage error, and ``--as DID`` reports
that tenant's objects from the spec's owners.

The plan is ``examples/gpu_fleet.cat`` with an ``owner`` clause on each of its four tenants.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from catopt_dsl.cli import main
from catopt_dsl.compile import load_plan
from catopt_dsl.identity import Identity, Owners
from catopt_dsl.runtime.backends import RunOptions, solve_with
from catopt_dsl.solver import SolveOptions, solve
from catopt_dsl.sync.auth import AuthConfigError, RunAuth
from catopt_dsl.sync.run import DistributedSolve

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TENANTS = ("tenant_a", "tenant_b", "tenant_c", "tenant_d")
KEYS = {t: Identity.from_seed(bytes([10 + i]) * 32) for i, t in enumerate(TENANTS)}
OPTIONS = SolveOptions(max_iter=400)


def owned_fleet(folder: Path, owners: dict[str, str] | None = None) -> Path:
    """gpu_fleet.cat with `owner "did:key:..."` on each tenant, written into ``folder``."""
    owners = owners or {t: k.did for t, k in KEYS.items()}
    text = (EXAMPLES / "gpu_fleet.cat").read_text(encoding="utf-8")
    for tenant, did in owners.items():
        text, n = re.subn(rf"(LocalProblem {tenant}\b[^{{]*?) \{{", rf'\1 owner "{did}" {{', text, count=1)
        assert n == 1, tenant
    for sub in ("data", "schemas"):
        if not (folder / sub).exists():
            shutil.copytree(EXAMPLES / sub, folder / sub)
    spec = folder / "fleet.cat"
    spec.write_text(text, encoding="utf-8")
    return spec


@pytest.fixture()
def fleet(tmp_path: Path) -> Path:
    return owned_fleet(tmp_path)


@pytest.fixture()
def keydir(tmp_path: Path) -> Path:
    d = tmp_path / "keys"
    d.mkdir()
    for tenant, key in KEYS.items():
        key.save(d / f"{tenant}.key")
    (d / "README.txt").write_text("not a key: a folder's other files are not read\n")
    return d


def cli(*args: Any) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


# -- the library -----------------------------------------------------------------------------------


def test_a_plan_with_owners_refuses_an_unsigned_distributed_run(fleet: Path) -> None:
    plan = load_plan(fleet)
    with pytest.raises(AuthConfigError, match="names owners"):
        DistributedSolve(plan, OPTIONS)
    with pytest.raises(AuthConfigError, match="names owners"):
        solve_with(plan, OPTIONS, backend="distributed")


def test_the_run_must_sign_for_the_spec_s_owners(fleet: Path) -> None:
    plan = load_plan(fleet)
    swapped = {**{t: k.did for t, k in KEYS.items()}, "tenant_a": KEYS["tenant_b"].did}
    auth = RunAuth(Owners(swapped), {k.did: k for k in KEYS.values()}, Identity.from_seed(bytes([9]) * 32))
    with pytest.raises(AuthConfigError, match="the spec names .* its owner"):
        DistributedSolve(plan, OPTIONS, auth=auth)
    with pytest.raises(AuthConfigError, match=f"no key for {KEYS['tenant_c'].did}, the owner of `tenant_c`"):
        RunAuth.for_plan(plan, [KEYS["tenant_a"], KEYS["tenant_b"], KEYS["tenant_d"]])


def test_a_signed_run_from_the_spec_s_owners_equals_the_unsigned_solve(fleet: Path) -> None:
    plan = load_plan(fleet)
    auth = RunAuth.for_plan(plan, KEYS.values())
    assert auth.owners.bindings == {t: k.did for t, k in KEYS.items()}
    got = solve_with(plan, OPTIONS, backend="distributed", run=RunOptions(auth=auth))
    ref = solve(plan, OPTIONS)
    assert got.status == ref.status == "optimal"
    assert got.objective is not None and ref.objective is not None
    assert abs(got.objective - ref.objective) <= 1e-9
    assert got.run is not None and got.run.signed and got.run.rejected_by == {}


# -- the CLI ------------------------------------------------------------------------------------------


def test_owners_without_keys_is_a_usage_error(fleet: Path, keydir: Path) -> None:
    r = cli("solve", fleet, "--backend", "distributed", "--quiet")
    assert r.exit_code == 2 and "names owners" in r.output and "--keys" in r.output
    r = cli("solve", fleet, "--backend", "distributed", "--quiet", "--keys", keydir / "tenant_a.key")
    assert r.exit_code == 2 and f"no key for {KEYS['tenant_b'].did}, the owner of `tenant_b`" in r.output
    assert "Traceback" not in r.output


def test_keys_and_identity_need_a_signed_run(fleet: Path, keydir: Path, tmp_path: Path) -> None:
    r = cli("solve", fleet, "--quiet", "--keys", keydir)
    assert r.exit_code == 2 and "--backend inprocess sends none" in r.output
    op = tmp_path / "op.key"
    Identity.from_seed(bytes([7]) * 32).save(op)
    plain = tmp_path / "plain.cat"
    plain.write_text((EXAMPLES / "gpu_fleet.cat").read_text(encoding="utf-8"), encoding="utf-8")
    r = cli("solve", plain, "--quiet", "--identity", op)
    assert r.exit_code == 2 and "this solve has neither" in r.output


def test_a_key_file_that_is_not_a_key_is_an_input_error(fleet: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("{}")
    r = cli("solve", fleet, "--backend", "distributed", "--quiet", "--keys", bad)
    assert r.exit_code == 1 and "bad.key" in r.output and "Traceback" not in r.output
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli("solve", fleet, "--backend", "distributed", "--quiet", "--keys", empty)
    assert r.exit_code == 1 and "without key files" in r.output


def test_signed_cli_run_reports_signed_and_equals_the_in_process_result(fleet: Path, keydir: Path, tmp_path: Path) -> None:
    op = tmp_path / "op.key"
    Identity.from_seed(bytes([7]) * 32).save(op)
    r = cli("solve", fleet, "--backend", "distributed", "--keys", keydir, "--identity", op, "--json", "--quiet")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    ref = json.loads(cli("solve", fleet, "--json", "--quiet").stdout)
    assert got["status"] == ref["status"] == "optimal"
    assert abs(got["objective"] - ref["objective"]) <= 1e-9
    assert got["membership"]["signed"] is True and got["membership"]["rejected_by"] == {}


def test_a_key_ring_may_not_contradict_the_spec(fleet: Path, tmp_path: Path) -> None:
    ring = tmp_path / "ring.json"
    ring.write_text(json.dumps({"owners": {"tenant_a": KEYS["tenant_b"].did}}))
    r = cli("solve", fleet, "--quiet", "--owners", ring)
    assert r.exit_code == 1 and "the spec makes" in r.output and "`tenant_a`" in r.output


def test_as_reports_one_tenant_from_the_spec_s_owners(fleet: Path, keydir: Path) -> None:
    did = KEYS["tenant_b"].did
    for extra in ((), ("--backend", "distributed", "--keys", keydir)):
        r = cli("solve", fleet, "--as", did, "--json", "--quiet", *extra)
        assert r.exit_code == 0, r.output
        view = json.loads(r.stdout)
        assert set(view["objects"]) == {"tenant_b"}
        assert view["status"] == "optimal"
    stranger = Identity.from_seed(bytes([3]) * 32).did
    r = cli("solve", fleet, "--as", stranger, "--quiet")
    assert r.exit_code == 1 and "owns no object of this plan (see the spec)" in r.output
    plain = fleet.parent / "plain.cat"
    plain.write_text((EXAMPLES / "gpu_fleet.cat").read_text(encoding="utf-8"), encoding="utf-8")
    r = cli("solve", plain, "--as", did, "--quiet")
    assert r.exit_code == 2 and "--as needs owners" in r.output


# -- Ray -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_up() -> Iterator[Any]:
    pytest.importorskip("ray")
    from catopt_dsl.runtime.ray_backend import ray_session

    with ray_session(num_cpus=2) as ray:
        yield ray
    assert not ray.is_initialized()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*running on CPU")  # the fleet's tenants declare GPUs this machine lacks
def test_ray_actors_sign_with_their_owner_s_key(ray_up: Any, tmp_path: Path) -> None:
    plan = load_plan(owned_fleet(tmp_path))
    with pytest.raises(AuthConfigError, match="names owners"):
        solve_with(plan, OPTIONS, backend="ray")
    got = solve_with(plan, OPTIONS, backend="ray", run=RunOptions(auth=RunAuth.for_plan(plan, KEYS.values())))
    ref = solve(plan, OPTIONS)
    assert got.status == ref.status == "optimal"
    assert got.objective is not None and ref.objective is not None
    assert abs(got.objective - ref.objective) <= 1e-9
    assert got.run is not None and got.run.signed and got.run.rejected_by == {}
    assert got.run.members == got.run.required == TENANTS  # every tenant's actor took part, signing


def test_the_report_counts_refusals_by_reason_in_json_and_metrics() -> None:
    from catopt_dsl.sync.report import RunReport, prometheus_text

    report = RunReport("synchronous", ("a",), ("a",), (), 3, 10, 0, 0, 0, 0, 5, 0, signed=True,
                       rejected_by={"WrongTenant": 3, "BadSignature": 2})
    js = report.to_json()
    assert js["signed"] is True and js["rejected_by"] == {"BadSignature": 2, "WrongTenant": 3}
    text = prometheus_text(report, "optimal", 10, 0.1)
    assert 'catopt_frames_rejected_by_reason_total{reason="WrongTenant"} 3.0' in text
    assert 'catopt_frames_rejected_by_reason_total{reason="BadSignature"} 2.0' in text


def test_a_signed_delta_re_solve_signs_for_the_changed_plan_s_owners(tmp_path: Path, keydir: Path) -> None:
    spec = owned_fleet(tmp_path)
    e = KEYS["tenant_a"].did
    spec.write_text(spec.read_text(encoding="utf-8") + (
        f'\nPlanDelta grow {{ add LocalProblem tenant_e owner "{e}" {{ var x: float[3]; '
        "minimize sum_squares(x - 1); subject to { x >= 0; } } }\n"), encoding="utf-8")
    r = cli("solve", spec, "--backend", "distributed", "--keys", keydir, "--delta", "grow", "--json", "--quiet")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert got["status"] == "optimal" and "tenant_e" in got["objects"] and got["membership"]["signed"] is True
