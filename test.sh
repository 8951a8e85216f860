#!/usr/bin/env bash
# The one command that proves the project: install, test, build, smoke-test the wheel.
# Writes READY_TO_PUBLISH only when every step passed.
set -euo pipefail
cd "$(dirname "$0")"
rm -f READY_TO_PUBLISH
PY="${PYTHON:-python3}"
export PYTHONHASHSEED=0
export RAY_USAGE_STATS_ENABLED=0

step() { printf '\n==> %s\n' "$*"; }

step "install torch 2.13.0 (the CPU-only build this machine kind keeps on disk)"
# PyPI's Linux x86-64 torch wheel pulls ~3 GB of nvidia-* CUDA libraries. This release lies on the
# CI machines' disk as a CPU-only wheel (190 MB, pip's find-links), and pip prefers 2.13.0+cpu to
# 2.13.0; elsewhere the same line falls back to PyPI's build, which also works, only bigger. The ml
# extra's `torch>=2.0` is then satisfied and nothing more is fetched for it.
"$PY" -m pip install --disable-pip-version-check -q "torch==2.13.0"

step "install catopt-dsl with its test, ray, plot, registry and ml (torch, JAX) extras"
"$PY" -m pip install --disable-pip-version-check -q -e ".[test,ray,plot,registry,ml]"

step "PostgreSQL server binaries (the registry's store tests start a private server from them)"
if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "found"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >/dev/null) \
    || echo "could not install PostgreSQL: the registry's PostgreSQL tests will be skipped"
else
  echo "no PostgreSQL server binaries: the registry's PostgreSQL tests will be skipped"
fi

step "pytest"
# pytest's exit code 5 (no tests collected) is a failure here too: set -e stops on it.
"$PY" -m pytest -q -p no:cacheprovider --timeout=900 tests

step "build sdist and wheel"
rm -rf dist
"$PY" -m build --no-isolation --outdir dist . >/dev/null
ls dist

step "the wheel runs catoptc check, explain and init with the grammar, docs and starter inside it"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$PY" -m pip install --disable-pip-version-check -q --no-deps --target "$tmp/site" dist/*.whl
test -f "$tmp/site/catopt_dsl/_data/grammar/catopt.lark"
cp -r examples "$tmp/examples"
(cd "$tmp" && PYTHONPATH="$tmp/site" "$PY" -c 'import catopt_dsl.resources as r, sys; p = r.grammar_path(); assert str(p).startswith(sys.argv[1]), p' "$tmp/site" \
  && PYTHONPATH="$tmp/site" "$PY" -m catopt_dsl check examples/gpu_fleet.cat \
  && PYTHONPATH="$tmp/site" "$PY" -m catopt_dsl explain E0101 >/dev/null \
  && PYTHONPATH="$tmp/site" "$PY" -m catopt_dsl init starter && PYTHONPATH="$tmp/site" "$PY" -m catopt_dsl check starter/plan.cat)

step "benchmarks harness (--quick: proves it runs; times are not asserted)"
if [ -f benchmarks/__main__.py ]; then
  "$PY" -m benchmarks --quick --out "$tmp/bench" >/dev/null
fi

touch READY_TO_PUBLISH
step "all checks passed: READY_TO_PUBLISH written"
