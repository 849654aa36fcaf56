#!/usr/bin/env bash
# The wheel works by itself: build it, install it into a fresh virtualenv, and use it from a
# folder outside the source tree (every package imports from site-packages, the configs and the
# game's JavaScript are inside, train.py trains, the other entry points start).
#   bash tests/wheel_smoke.sh [PYTHON]      (make test runs it)
#   bash tests/wheel_smoke.sh [PYTHON] --full-install
# The fresh venv reads the third-party packages from the project's .venv (a path entry, which
# does not run .venv's own .pth files, so the project's editable install stays invisible) and
# pip check verifies that they satisfy the wheel's requirements: a minute less than installing
# them again, which --full-install does.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${1:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rm -rf "$repo/build"  # setuptools would pack what an earlier build left in build/lib
"$repo/.venv/bin/pip" wheel -q --no-deps --no-build-isolation -w "$work/dist" "$repo"
"$python" -m venv "$work/venv"
py="$work/venv/bin/python"
if [ "${2:-}" = "--full-install" ]; then
    "$py" -m pip install -q --upgrade pip
    "$py" -m pip install -q "torch==2.13.0"          # the CPU build (pyproject.toml says why)
    "$py" -m pip install -q "$work"/dist/*.whl
else
    site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    "$repo/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$site/project-deps.pth"
    "$py" -m pip uninstall -q -y setuptools 2>/dev/null || true  # the venv's own, older than torch asks for
    "$py" -m pip install -q --no-deps "$work"/dist/*.whl
    "$py" -m pip check
fi
cd "$work"

"$py" - <<'PY'
import importlib
import sys

for name in ("arena", "envs", "policies", "training", "evaluation", "league", "league.pbt", "ingest", "storage",
             "configs", "common", "demos", "web", "train", "evaluate", "ingest_server"):
    module = importlib.import_module(name)
    assert module.__file__.startswith(sys.prefix), f"{name} imported from {module.__file__}, not the installed wheel"
import configs
import web

assert all(web.asset(name).is_file() for name in web.FILES), "the wheel lacks the game's JavaScript"
assert (configs.CONFIG_DIR / "aggression.yaml").is_file(), "the wheel lacks the shipped configs"
PY
config_dir=$("$py" -c 'import configs; print(configs.CONFIG_DIR)')
"$py" -m train "$config_dir/cartpole.yaml" --train.total_timesteps 2048 --torch_threads 1 --run-dir "$work/run" \
    > "$work/train.log"
grep -q "^Finished" "$work/train.log" || { cat "$work/train.log"; exit 1; }
test -f "$work/run/checkpoints/latest.pt"
for module in evaluate league.pbt ingest_server training.bench; do
    "$py" -m "$module" --help > /dev/null
done
echo "wheel smoke test passed: $(basename "$work"/dist/*.whl) installed, imported and trained outside the source tree"
