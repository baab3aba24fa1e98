# shellcheck shell=bash
# ensure_debian_packages LABEL PACKAGE...: install (once, idempotent, noninteractive) the Debian
# packages that are missing; nothing when all are there. Installing needs root: otherwise it
# says which packages are missing and fails. Progress goes to stderr, tagged with LABEL.
ensure_debian_packages() {
  local label=$1 p
  shift
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || { echo "error: installing ${missing[*]} needs root" >&2; return 1; }
  echo "[$label] installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
