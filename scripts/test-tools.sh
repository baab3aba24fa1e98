#!/usr/bin/env bash
# Install, once, the tools the test suite needs besides the control plane,
# into a cache outside the repo:
#   - cargo-nextest (test runner), from crates.io
#   - cargo-deny (advisories, bans, licenses, sources), from crates.io
#   - the RustSec advisory database, cloned from the dated offline snapshot
#     ../shared/advisory-db/advisory-db.bundle (nothing is fetched live;
#     SECURITY.md says how a release is checked against the live database)
#   - a Python venv with pyotp (an independent TOTP implementation the
#     profile engine's codes are cross-checked against), from PyPI
# Prints shell `export` lines for them; a warm cache answers at once.
set -euo pipefail

NEXTEST_VERSION=${NEXTEST_VERSION:-0.9.151}
DENY_VERSION=${DENY_VERSION:-0.20.2}
PYOTP_VERSION=${PYOTP_VERSION:-2.12.0}
CACHE=${OTPILOT_CACHE:-$HOME/.cache/otpilot}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ADVISORY_BUNDLE=${OTPILOT_ADVISORY_BUNDLE:-$ROOT/../shared/advisory-db/advisory-db.bundle}
step() { printf '[test-tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

nextest_root=$CACHE/cargo-nextest-$NEXTEST_VERSION
if [ ! -x "$nextest_root/bin/cargo-nextest" ]; then
  step "building cargo-nextest $NEXTEST_VERSION (cold: a few minutes)"
  cargo install --quiet --locked --root "$nextest_root.partial" --version "$NEXTEST_VERSION" cargo-nextest >&2
  rm -rf "$nextest_root"; mv "$nextest_root.partial" "$nextest_root"
fi

deny_root=$CACHE/cargo-deny-$DENY_VERSION
if [ ! -x "$deny_root/bin/cargo-deny" ]; then
  step "building cargo-deny $DENY_VERSION (cold: a few minutes)"
  cargo install --quiet --locked --root "$deny_root.partial" --version "$DENY_VERSION" cargo-deny >&2
  rm -rf "$deny_root"; mv "$deny_root.partial" "$deny_root"
fi

# cargo-deny opens the database of URL u at <db-path>/<last path segment of
# u>-<xxhash64 of u, lowercased, seed 0xca80de71> (src/advisories/helpers/db.rs
# of cargo-deny 0.20); deny.toml names the default URL, whose folder is this.
# One clone per snapshot commit: a new bundle in shared/ gets a new folder.
# A missing bundle leaves OTPILOT_ADVISORY_DBS empty, and test.sh's supply
# chain check fails on that (it never skips).
advisory_dbs=
if [ -r "$ADVISORY_BUNDLE" ]; then
  snapshot=$(git bundle list-heads "$ADVISORY_BUNDLE" | awk '$2 == "refs/heads/main" {print $1}')
  [ -n "$snapshot" ] || { echo "error: $ADVISORY_BUNDLE has no refs/heads/main" >&2; exit 1; }
  advisory_dbs=$CACHE/advisory-dbs-$snapshot
  db=$advisory_dbs/advisory-db-3157b0e258782691
  if [ "$(git -C "$db" rev-parse -q --verify HEAD 2>/dev/null)" != "$snapshot" ]; then
    step "cloning the advisory database snapshot ${snapshot:0:12}"
    rm -rf "$advisory_dbs"; mkdir -p "$advisory_dbs"
    git clone -q --branch main "$ADVISORY_BUNDLE" "$db.partial" >&2
    mv "$db.partial" "$db"
  fi
else
  step "warning: no advisory database snapshot at $ADVISORY_BUNDLE"
fi

venv=$CACHE/venv-pyotp-$PYOTP_VERSION
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pyotp' 2>/dev/null; then
  step "creating a Python venv with pyotp $PYOTP_VERSION"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "pyotp==$PYOTP_VERSION" >&2
fi

# A real HTTP proxy for the egress-proxy tests (operator/tests/egress_proxy.rs);
# each test starts its own on a free loopback port, so the package's service
# is never started (policy-rc.d refuses it on this machine kind; no systemd).
# shellcheck source=lib/debian-packages.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/debian-packages.sh"
ensure_debian_packages test-tools tinyproxy

echo "export PATH=$nextest_root/bin:$deny_root/bin:\$PATH"
echo "export OTPILOT_TINYPROXY=$(command -v tinyproxy)"
echo "export OTPILOT_ADVISORY_DBS=$advisory_dbs"
echo "export OTPILOT_PYTHON=$venv/bin/python"
