#!/usr/bin/env bash
# The project's two commands (and a few helpers). Everything is installed from scratch into .venv
# on first use, so a fresh clone needs nothing but Python 3.10+ and network access to PyPI.
#
#   ./dev.sh demo    run the chain example DAG against the local emulator (no network, no API key)
#   ./dev.sh test    install everything the tests need and run the whole suite
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
AIRFLOW_VERSION=${AIRFLOW_VERSION:-3.3.2}
VENV=${VENV:-.venv}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  if [ ! -x "$VENV/bin/uv" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check uv
  fi
  local stamp="$VENV/.installed-$AIRFLOW_VERSION-$(cat pyproject.toml constraints/*.txt 2>/dev/null | cksum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ]; then
    VIRTUAL_ENV="$PWD/$VENV" "$VENV/bin/uv" pip install --quiet \
      "apache-airflow==$AIRFLOW_VERSION" -e ".[test]"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
  fi
  export PATH="$PWD/$VENV/bin:$PATH"
}

cmd=${1:-help}
shift || true
case "$cmd" in
  demo)
    ensure_venv
    exec python scripts/demo.py "$@"
    ;;
  test)
    ensure_venv
    ruff check .
    ruff format --check .
    exec python -m pytest "$@"
    ;;
  venv)
    ensure_venv
    ;;
  *)
    sed -n '2,7p' "$0"
    exit 2
    ;;
esac
