#!/usr/bin/env bash
# Install everything the test suite needs and run it: ruff, mypy, and pytest on
# SQLite and on a PostgreSQL cluster this script starts (and stops) itself.
#   scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# 1. System packages (Debian): the HSM, PDF/NSS tools, a browser, CJK fonts.
need=()
for pkg in softhsm2 poppler-utils libnss3-tools chromium fonts-wqy-microhei openssl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing ${need[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "!! missing Debian packages (run as root to install): ${need[*]}" >&2
  fi
fi

# 2. Python packages, pinned by requirements-lock.txt.
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install -q -c requirements-lock.txt -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true

# 3. A throw-away PostgreSQL cluster.
pgdir=$(mktemp -d /tmp/sealkeeper-pg.XXXXXX)
pgport=${SEALKEEPER_TEST_PG_PORT:-55433}
trap 'scripts/pg-cluster.sh stop "$pgdir"; rm -rf "$pgdir"' EXIT
export SEALKEEPER_TEST_PG_URL=$(scripts/pg-cluster.sh start "$pgdir" "$pgport")
export SEALKEEPER_TEST_REQUIRE_PG=1
export SEALKEEPER_ARTIFACTS=${SEALKEEPER_ARTIFACTS:-$root/artifacts}

# 4. Checks and tests.
echo "== ruff";   .venv/bin/ruff check src tests bench
echo "== mypy";   .venv/bin/mypy src
echo "== pytest (SQLite and PostgreSQL)"
.venv/bin/pytest -n 2 -p no:cacheprovider "$@"
