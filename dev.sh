#!/usr/bin/env bash
# The project's two commands (and a few helpers). Everything is installed from scratch on first use,
# so a fresh clone needs nothing but Python 3.10+ and network access to PyPI (and, for the browser
# test, Debian's chromium, and for the production test, Debian's postgresql and redis-server, which
# `./dev.sh test` installs with apt-get when it runs as root).
#
#   ./dev.sh demo     from a prompt to saved clips (imagine, upscale, animate, extend, save) against the local
#                     emulator (no network, no API key)
#   ./dev.sh test     what CI runs: ruff, mypy, the full suite on the newest Airflow (.venv) and the
#                     suite without the slow tests on the oldest supported Airflow (.venv-3.0);
#                     arguments go to both pytest runs, e.g. ./dev.sh test -k connection
#   ./dev.sh lint     ruff check, ruff format --check and mypy only
#   ./dev.sh compat   the oldest-Airflow part of the matrix only
#   ./dev.sh venv     create or update .venv only
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
AIRFLOW_VERSION=${AIRFLOW_VERSION:-3.3.2}
VENV=${VENV:-.venv}
# The oldest Airflow 3 release the provider supports, installed with the lowest versions that the
# pyproject floors allow (uv --resolution lowest-direct) and the upper bounds in constraints/.
COMPAT_AIRFLOW_VERSION=${COMPAT_AIRFLOW_VERSION:-3.0.2}
COMPAT_VENV=${COMPAT_VENV:-.venv-3.0}
COMPAT_CONSTRAINTS=constraints/airflow-3.0.txt

# install_into VENV AIRFLOW_VERSION EXTRAS [uv pip install options...]: create VENV once, (re)install when
# pyproject.toml or constraints/ changed.
install_into() {
  local venv=$1 airflow=$2 extras=$3
  shift 3
  if [ ! -x "$venv/bin/python" ]; then
    "$PYTHON" -m venv "$venv" || return 1
  fi
  if [ ! -x "$venv/bin/uv" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check uv || return 1
  fi
  local stamp
  stamp="$venv/.installed-$airflow-$(cat pyproject.toml constraints/*.txt 2>/dev/null | cksum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ]; then
    VIRTUAL_ENV="$PWD/$venv" "$venv/bin/uv" pip install --quiet "$@" "apache-airflow==$airflow" -e ".[$extras]" || return 1
    rm -f "$venv"/.installed-*
    touch "$stamp"
  fi
}

ensure_venv() {
  install_into "$VENV" "$AIRFLOW_VERSION" test,deploy-test
  export PATH="$PWD/$VENV/bin:$PATH"
}

ensure_compat_venv() {
  install_into "$COMPAT_VENV" "$COMPAT_AIRFLOW_VERSION" test --resolution lowest-direct -c "$COMPAT_CONSTRAINTS"
}

# The browser test drives Debian's chromium (never a downloaded browser). As root (CI), install it.
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's chromium for the browser test ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || return 1
    apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null || return 1
  else
    echo "Chromium is not installed: the browser test will be skipped (as root, ./dev.sh test installs it)."
  fi
}

# The production test runs Debian's PostgreSQL and Redis (started and stopped by the test). As root (CI), install them.
ensure_servers() {
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    missing+=(postgresql)
  fi
  if [ ${#missing[@]} = 0 ]; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's ${missing[*]} for the production test ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || return 1
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || return 1
  else
    echo "${missing[*]} not installed: the production test will be skipped (as root, ./dev.sh test installs them)."
  fi
}

# part NAME COMMAND...: run one part of the build, time it, remember whether it failed, go on.
PARTS=()
FAILED=0
part() {
  local name=$1 start end status
  shift
  echo
  echo "=== $name"
  start=$(date +%s.%N)
  set +e
  "$@"
  status=$?
  set -e
  end=$(date +%s.%N)
  local seconds
  seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  if [ "$status" = 0 ]; then
    PARTS+=("$(printf '%-50s %8s s  ok' "$name" "$seconds")")
  else
    PARTS+=("$(printf '%-50s %8s s  FAILED (exit %s)' "$name" "$seconds" "$status")")
    FAILED=1
  fi
  echo "=== $name: ${seconds} s, exit $status"
  return 0
}

summary() {
  echo
  echo "=== Duration of each part"
  printf '%s\n' "${PARTS[@]}"
  if [ -d artifacts/browser ]; then
    echo "Browser screenshots: artifacts/browser/"
  fi
  if [ -f artifacts/production/figures.json ]; then
    echo "Production deployment figures: artifacts/production/figures.json"
  fi
  if [ "$FAILED" != 0 ]; then
    echo "FAILED: at least one part failed"
  fi
}

run_lint() {
  part "ruff check" ruff check .
  part "ruff format --check" ruff format --check .
  part "mypy" mypy
}

run_compat() {
  part "setup: $COMPAT_VENV (Airflow $COMPAT_AIRFLOW_VERSION, lowest deps)" ensure_compat_venv
  part "pytest, Airflow $COMPAT_AIRFLOW_VERSION (not slow)" \
    "$COMPAT_VENV/bin/python" -m pytest -p no:cacheprovider "$@" -m "not slow"
}

cmd=${1:-help}
shift || true
case "$cmd" in
  demo)
    ensure_venv
    exec python scripts/demo.py "$@"
    ;;
  test)
    if [ "$(id -u)" = 0 ] || [ "${CI:-}" = "true" ]; then
      # Where the browser can be installed (CI runs as root), its absence is a failure, not a skip.
      export MJVIDEO_REQUIRE_BROWSER=${MJVIDEO_REQUIRE_BROWSER:-1}
      export MJVIDEO_REQUIRE_PRODUCTION=${MJVIDEO_REQUIRE_PRODUCTION:-1}
    fi
    part "setup: chromium" ensure_chromium
    part "setup: postgresql, redis-server" ensure_servers
    part "setup: $VENV (Airflow $AIRFLOW_VERSION)" ensure_venv
    export PATH="$PWD/$VENV/bin:$PATH"
    run_lint
    part "pytest, Airflow $AIRFLOW_VERSION (all)" python -m pytest "$@"
    run_compat "$@"
    summary
    exit "$FAILED"
    ;;
  lint)
    ensure_venv
    run_lint
    summary
    exit "$FAILED"
    ;;
  compat)
    run_compat "$@"
    summary
    exit "$FAILED"
    ;;
  venv)
    ensure_venv
    ;;
  *)
    sed -n '2,13p' "$0"
    exit 2
    ;;
esac
