#!/usr/bin/env bash
# Install, once, the tools the test suite needs besides the control plane,
# into a cache outside the repo:
#   - cargo-nextest (test runner), from crates.io
#   - a Python venv with pyotp (an independent TOTP implementation the
#     profile engine's codes are cross-checked against), from PyPI
# Prints shell `export` lines for them; a warm cache answers at once.
set -euo pipefail

NEXTEST_VERSION=${NEXTEST_VERSION:-0.9.151}
PYOTP_VERSION=${PYOTP_VERSION:-2.12.0}
CACHE=${OTPILOT_CACHE:-$HOME/.cache/otpilot}
step() { printf '[test-tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

nextest_root=$CACHE/cargo-nextest-$NEXTEST_VERSION
if [ ! -x "$nextest_root/bin/cargo-nextest" ]; then
  step "building cargo-nextest $NEXTEST_VERSION (cold: a few minutes)"
  cargo install --quiet --locked --root "$nextest_root.partial" --version "$NEXTEST_VERSION" cargo-nextest >&2
  rm -rf "$nextest_root"; mv "$nextest_root.partial" "$nextest_root"
fi

venv=$CACHE/venv-pyotp-$PYOTP_VERSION
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pyotp' 2>/dev/null; then
  step "creating a Python venv with pyotp $PYOTP_VERSION"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "pyotp==$PYOTP_VERSION" >&2
fi

echo "export PATH=$nextest_root/bin:\$PATH"
echo "export OTPILOT_PYTHON=$venv/bin/python"
