#!/usr/bin/env bash
# The one command that proves the project: set up a virtual environment, install, run the tests,
# build the sdist and wheel, install the wheel into a clean virtual environment and use it, and run
# the quick benchmarks. Writes READY_TO_PUBLISH (version, commit, the checks passed) only when
# every check passed.
#
#   PYTHON=/path/to/python   use that interpreter as it is (no virtual environment of our own)
#   CATOPT_TEST_SCOPE=fast    `pytest -m "not slow"` instead of the whole suite (the README test
#                             runs a fresh clone this way; READY_TO_PUBLISH then says so)
set -euo pipefail
cd "$(dirname "$0")"
rm -f READY_TO_PUBLISH
export PYTHONHASHSEED=0
export RAY_USAGE_STATS_ENABLED=0
SCOPE="${CATOPT_TEST_SCOPE:-full}"
checks=()

step() { printf '\n==> %s\n' "$*"; }
passed() { checks+=("$1"); }

if [ -n "${PYTHON:-}" ]; then
  PY="$PYTHON"
elif [ -n "${VIRTUAL_ENV:-}" ]; then
  PY="$VIRTUAL_ENV/bin/python"
else
  # A system Python (Debian's, say) refuses `pip install` outright (externally managed): work in
  # a virtual environment of our own, as the README tells users to.
  step "virtual environment .venv"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  PY="$PWD/.venv/bin/python"
fi

step "install torch 2.13.0 (the CPU-only build this machine kind keeps on disk)"
# PyPI's Linux x86-64 torch wheel pulls ~3 GB of nvidia-* CUDA libraries. This release lies on the
# CI machines' disk as a CPU-only wheel (190 MB, pip's find-links), and pip prefers 2.13.0+cpu to
# 2.13.0; elsewhere the same line falls back to PyPI's build, which also works, only bigger. The ml
# extra's `torch>=2.0` is then satisfied and nothing more is fetched for it.
"$PY" -m pip install --disable-pip-version-check -q "torch==2.13.0"

step "install catopt-dsl with its test, ray, plot, registry and ml (torch, JAX) extras"
"$PY" -m pip install --disable-pip-version-check -q -e ".[test,ray,plot,registry,ml]"
passed "install (editable, every extra)"

step "PostgreSQL server binaries (the registry's store tests start a private server from them)"
if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "found"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >/dev/null) \
    || echo "could not install PostgreSQL: the registry's PostgreSQL tests will be skipped"
else
  echo "no PostgreSQL server binaries: the registry's PostgreSQL tests will be skipped"
fi

step "Graphviz (catoptc graph renders with its dot)"
if command -v dot >/dev/null 2>&1; then
  echo "found"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends graphviz >/dev/null \
    || echo "could not install Graphviz: catoptc graph will write DOT text and its SVG test will be skipped"
else
  echo "no Graphviz: catoptc graph will write DOT text and its SVG test will be skipped"
fi

step "pytest ($SCOPE)"
# pytest's exit code 5 (no tests collected) is a failure here too: set -e stops on it.
if [ "$SCOPE" = fast ]; then
  "$PY" -m pytest -q -p no:cacheprovider --timeout=900 -m "not slow" tests
  passed "pytest -m 'not slow'"
else
  "$PY" -m pytest -q -p no:cacheprovider --timeout=900 tests
  passed "pytest (every test: generated/ fresh, Rust and C++ builds and runs, conformance)"
fi

step "lint and type check: ruff check catopt_dsl, mypy catopt_dsl"
"$PY" -m ruff check catopt_dsl
passed "ruff check catopt_dsl (the rule set in pyproject.toml)"
"$PY" -m mypy catopt_dsl
passed "mypy catopt_dsl (no errors)"

step "build sdist and wheel"
rm -rf dist
"$PY" -m build --no-isolation --outdir dist . >/dev/null
ls dist
passed "python -m build"

step "the wheel, installed into a clean virtual environment, checks, solves, explains and inits"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$PY" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --disable-pip-version-check -q dist/*.whl
cp -r examples "$tmp/examples"
(cd "$tmp" \
  && "$tmp/venv/bin/python" -c 'import catopt_dsl.resources as r, sys; p = r.grammar_path(); assert "site-packages" in str(p), p' \
  && "$tmp/venv/bin/catoptc" check examples/gpu_fleet.cat \
  && "$tmp/venv/bin/catoptc" solve examples/gpu_fleet.cat --json >"$tmp/solve.json" \
  && "$tmp/venv/bin/python" -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["status"] == "optimal", d' "$tmp/solve.json" \
  && "$tmp/venv/bin/catoptc" explain E0101 >/dev/null \
  && "$tmp/venv/bin/catoptc" compile examples/plan_deltas.cat --target all --out "$tmp/compiled" >/dev/null \
  && test -s "$tmp/compiled/rust/src/runtime.rs" && test -s "$tmp/compiled/cpp/catopt_runtime.cpp" \
  && "$tmp/venv/bin/catoptc" init starter && "$tmp/venv/bin/catoptc" check starter/plan.cat)
passed "wheel in a clean venv: catoptc check + solve + explain + compile (native runtimes ship in the wheel) + init"

step "the demo: catoptc demo fleet --hours 6, in this process (every hour checked against a centralised solve, the ledger verified)"
"$PY" -m catopt_dsl demo fleet --hours 6 --quiet --out "$tmp/fleet"
test -s "$tmp/fleet/report.html"
passed "catoptc demo fleet --hours 6 (in-process: every hourly check held, ledger verified, report written)"

step "benchmarks harness (--quick: proves it runs; times are not asserted)"
"$PY" -m benchmarks --quick --out "$tmp/bench" >/dev/null
passed "python -m benchmarks --quick"

version="$("$PY" -c 'import catopt_dsl; print(catopt_dsl.__version__)')"
commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
{
  echo "catopt-dsl $version"
  echo "commit $commit"
  echo "scope $SCOPE"
  echo "checks passed:"
  for c in "${checks[@]}"; do echo "- $c"; done
} >READY_TO_PUBLISH
step "all checks passed: READY_TO_PUBLISH written"
cat READY_TO_PUBLISH
