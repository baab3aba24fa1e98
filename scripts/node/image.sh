#!/usr/bin/env bash
# Build an OCI image archive from host binaries, without a registry or Docker, ready for
# `scripts/node.sh load OUT.tar` (ctr images import into the node's containerd).
#
#   scripts/node/image.sh NAME OUT.tar BINARY[=PATH_IN_IMAGE] [MORE...]
#   EXTRA="/etc/ssl/certs/ca-certificates.crt ..."   host files copied to the same paths
#   BUSYBOX=1                                          add Debian's static busybox + applets in /bin
#   IMAGE_USER=65532:65532                             the config's User (default: none, root)
#   IMAGE_LABELS="k=v\nk=v"                            OCI labels (one per line), config and manifest
#   SOURCE_DATE_EPOCH=SECONDS                           every file's mtime and the config's created
#
# Prints "OUT.tar MANIFEST_DIGEST" on stderr. The same files and settings give the same digest
# (scripts/node/mkimage.py says how).
# Binaries are copied without debug info (strip --strip-debug). Dynamically linked ones are fine: the ELF interpreter and every `ldd` library come along.
# The entrypoint is the first BINARY (at PATH_IN_IMAGE, or its host path).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
name=$1 out=$2; shift 2
root=$(mktemp -d); trap 'rm -rf "$root"' EXIT
copy() { mkdir -p "$root$(dirname "$2")"; cp -L "$1" "$root$2"; }
entry=""
for spec in "$@"; do
  src=${spec%%=*}; dst=$src
  [ "$spec" = "$src" ] || dst=${spec#*=}
  [ -n "$entry" ] || entry=$dst
  copy "$src" "$dst"
  # Debug builds carry ~200 MB of DWARF: leave it out of the image.
  strip --strip-debug "$root$dst" 2>/dev/null || true
  for l in $(ldd "$src" 2>/dev/null | grep -o '/[^ ]*' | sort -u); do copy "$l" "$l"; done
done
for f in ${EXTRA:-}; do copy "$f" "$f"; done
if [ "${BUSYBOX:-0}" = 1 ]; then
  copy /bin/busybox /bin/busybox
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"; done
fi
[ -n "$entry" ] || entry=/bin/sh
mkdir -p "$root/tmp" "$root/etc" "$root/proc" "$root/sys" "$root/dev"; chmod 1777 "$root/tmp"
[ -f "$root/etc/passwd" ] || printf 'root:x:0:0:root:/:/nonexistent\nnonroot:x:65532:65532:nonroot:/:/nonexistent\n' > "$root/etc/passwd"
[ -f "$root/etc/group" ] || printf 'root:x:0:\nnonroot:x:65532:\n' > "$root/etc/group"
epoch=${SOURCE_DATE_EPOCH:-0}
args=(--entrypoint "[\"$entry\"]" --epoch "$epoch" --created "$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)")
# The host's architecture: the binaries and libraries come from it.
case $(uname -m) in x86_64) args+=(--arch amd64) ;; aarch64) args+=(--arch arm64) ;; *) echo "error: unsupported $(uname -m)" >&2; exit 1 ;; esac
[ -z "${IMAGE_USER:-}" ] || args+=(--user "$IMAGE_USER")
while IFS= read -r l; do [ -z "$l" ] || args+=(--label "$l"); done <<<"${IMAGE_LABELS:-}"
python3 "$HERE/mkimage.py" "$name" "$root" "$out" "${args[@]}" >&2
