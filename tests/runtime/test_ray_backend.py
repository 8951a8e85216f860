"""Acceptance 4: ``--backend ray`` gives the in-process answer on every example (one local Ray)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")

from click.testing import CliRunner  # noqa: E402

from catopt_dsl.cli import main  # noqa: E402
from catopt_dsl.compile import load_plan  # noqa: E402
from catopt_dsl.runtime.ray_backend import (  # noqa: E402
    DEFAULT_MAX_ACTORS,
    AcceleratorFallbackWarning,
    actor_count,
    placement_for,
    ray_assignment,
    ray_session,
    solve_on_ray,
)
from catopt_dsl.solver import SolveResult, solve  # noqa: E402
from catopt_dsl.sync.transport import FaultPlan  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NAMES = ["consensus_lasso", "federated_logreg", "gpu_fleet", "mixed_plan", "plan_deltas", "sites_200"]


@pytest.fixture(scope="module")
def ray_up() -> Iterator[Any]:
    with ray_session(num_cpus=2) as ray:
        yield ray
    assert not ray.is_initialized()


@lru_cache(maxsize=None)
def in_process(name: str) -> SolveResult:
    return solve(load_plan(EXAMPLES / f"{name}.cat"))


def _close(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) <= 1e-4 * max(1.0, abs(b))


@pytest.mark.parametrize("name", NAMES)
def test_ray_matches_in_process(ray_up: Any, name: str) -> None:
    plan = load_plan(EXAMPLES / f"{name}.cat")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = solve_on_ray(plan)
    ref = in_process(name)
    assert got.status == "optimal", got.message
    assert _close(got.objective, ref.objective), (got.objective, ref.objective)
    assert got.iterations == ref.iterations  # the same synchronous ADMM, frames through actors
    assert set(got.objects) == set(ref.objects)
    accelerated = sorted(o.name for o in plan.objects if o.platform in ("cuda", "rocm"))
    fallbacks = [w for w in caught if issubclass(w.category, AcceleratorFallbackWarning)]
    if not ray_up.cluster_resources().get("GPU"):
        # every accelerated object was announced as falling back to CPU, nothing else
        assert sorted(n for w in fallbacks for n in accelerated if f" {n}" in str(w.message)) == accelerated


def test_ray_with_a_lossy_transport(ray_up: Any) -> None:
    plan = load_plan(EXAMPLES / "plan_deltas.cat")
    got = solve_on_ray(plan, faults=FaultPlan(drop=0.2, duplicate=0.1, reorder=0.3), seed=3)
    assert got.status == "optimal" and got.iterations == in_process("plan_deltas").iterations
    assert _close(got.objective, in_process("plan_deltas").objective)


def test_cli_backend_ray_json(ray_up: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["solve", "examples/gpu_fleet.cat", "--backend", "ray", "--json"])
    assert result.exit_code == 0, result.output
    line = [ln for ln in result.output.splitlines() if ln.startswith("{")][-1]
    data = json.loads(line)
    assert data["status"] == "optimal"
    assert _close(data["objective"], in_process("gpu_fleet").objective)
    assert sorted(data["objects"]) == ["tenant_a", "tenant_b", "tenant_c", "tenant_d"]
    assert ray_up.is_initialized()  # the CLI used the running session and left it up


def test_actor_count_is_one_per_object_up_to_the_cap_then_one_per_cpu_for_family_members() -> None:
    # a small plan: every object its own actor, whatever the CPUs
    assert [actor_count(n, 2.0, shards=s) for n in (1, 3, 4) for s in (True, False)] == [DEFAULT_MAX_ACTORS] * 6
    # family members batched anyway: one actor per CPU (more processes than cores only add calls)
    assert actor_count(8, 2.0, shards=True) == 2 and actor_count(512, 3.0, shards=True) == 3
    assert actor_count(8, 1.0, shards=True) == 1
    assert actor_count(8, 64.0, shards=True) == DEFAULT_MAX_ACTORS and actor_count(8, 64.0, 16, shards=True) == 16
    assert actor_count(8, None, shards=True) == actor_count(8, 0.0, shards=True) == DEFAULT_MAX_ACTORS  # CPUs unknown
    # distinct LocalProblems (tenants) stay as many failure domains as the cap allows
    assert actor_count(8, 2.0, shards=False) == DEFAULT_MAX_ACTORS
    with pytest.raises(ValueError):
        actor_count(8, 2.0, max_actors=0, shards=True)


def test_a_batched_plan_gets_one_actor_per_cpu_and_its_faults_those_node_ids(ray_up: Any) -> None:
    """mixed_plan (6 members of one family) on the 2-CPU session: 2 actors of 3 objects; faults
    written against the assignment see the one the run uses, and crashing a node loses exactly its
    objects. Distinct LocalProblems keep one actor each up to the cap."""
    plan = load_plan(EXAMPLES / "mixed_plan.cat")
    assignment = ray_assignment(plan, ray_up)
    names = tuple(o.name for o in plan.objects)
    assert assignment == {1: names[:3], 2: names[3:]}
    fleet = load_plan(EXAMPLES / "gpu_fleet.cat")
    assert ray_assignment(fleet, ray_up) == {i + 1: (o.name,) for i, o in enumerate(fleet.objects)}
    seen: list[Any] = []

    def crash_node_2(given: Any) -> FaultPlan:
        seen.append(dict(given))
        return FaultPlan(crash_at={2: 5})

    got = solve_on_ray(plan, faults=crash_node_2)
    assert seen == [assignment]
    assert got.status == "member_lost" and got.run is not None
    assert tuple(got.run.to_json()["lost"]) == names[3:]


def test_placement_asks_for_matching_accelerators() -> None:
    nvidia = {"CPU": 8.0, "GPU": 2.0, "accelerator_type:A100": 1.0}
    amd = {"CPU": 8.0, "GPU": 1.0, "accelerator_type:AMD-Instinct-MI300X": 1.0}
    unlabelled = {"CPU": 8.0, "GPU": 4.0}
    cpu_only = {"CPU": 8.0}
    assert placement_for({"a": "cuda"}, nvidia, gpu_nodes=4) == ({"num_gpus": 0.5, "accelerator_type": "A100"}, None)
    assert placement_for({"b": "rocm"}, amd) == ({"num_gpus": 1.0, "accelerator_type": "AMD-Instinct-MI300X"}, None)
    assert placement_for({"a": "cuda"}, unlabelled, gpu_nodes=2) == ({"num_gpus": 1.0}, None)
    assert placement_for({"d": "cpu", "e": None}, nvidia) == ({}, None)
    for platforms, resources in (({"b": "rocm"}, nvidia), ({"a": "cuda"}, amd), ({"a": "cuda"}, cpu_only)):
        opts, warning = placement_for(platforms, resources)
        assert opts == {} and warning is not None and "running on CPU" in warning
    opts, warning = placement_for({"a": "cuda", "b": "rocm"}, nvidia)
    assert opts == {} and warning is not None


def test_fallback_warning_names_a_few_members_and_counts_the_rest() -> None:
    many = {f"tenant[{i}]": "cuda" for i in range(40)}
    _, warning = placement_for(many, {"CPU": 2.0})
    assert warning is not None and "and 35 more" in warning and warning.count("tenant[") == 5


RAY_HOME_SCRIPT = r"""
import sys
from catopt_dsl.compile import load_plan
from catopt_dsl.runtime.ray_backend import solve_on_ray
result = solve_on_ray(load_plan(sys.argv[1]))
print(result.status)
"""


@pytest.mark.slow
def test_local_ray_leaves_nothing_in_home(tmp_path: Path) -> None:
    """A throwaway local Ray keeps its session files and auth token in its own temp folder."""
    import os
    import subprocess
    import sys

    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_AUTH_TOKEN", None)
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    spec = Path(__file__).resolve().parents[2] / "examples" / "plan_deltas.cat"
    proc = subprocess.run(
        [sys.executable, "-c", RAY_HOME_SCRIPT, str(spec)], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "optimal"
    assert not (home / ".ray").exists(), sorted(str(p) for p in home.rglob("*"))


def test_ray_reports_its_start_up_phases_and_progress(ray_up: Any) -> None:
    """A Ray solve is not silent while it starts: each phase is announced, then every iteration."""
    phases: list[str] = []
    rows: list[dict[str, float]] = []
    plan = load_plan(EXAMPLES / "plan_deltas.cat")
    got = solve_on_ray(plan, phase=phases.append, progress=rows.append)
    assert got.status == "optimal" and got.run is not None
    assert phases[0].startswith("starting 3 node actor(s)") and phases[-1] == "solving with 3 node actor(s)"
    assert "node actors ready: 3/3" in phases
    assert [int(r["iteration"]) for r in rows] == list(range(1, (got.iterations or 0) + 1))
    startup = got.run.to_json()["startup_s"]
    assert set(startup) == {"ray_init", "actors"} and startup["actors"] > 0
