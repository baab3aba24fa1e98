#!/usr/bin/env bash
# The shipped images, without Docker: the operator and the sidecar as OCI image archives built
# from the release binaries, and optionally pushed to a registry with skopeo (daemonless).
#
#   scripts/images.sh                                   # build; archives in $OUT (below)
#   scripts/images.sh --push REGISTRY/PREFIX[:TAG]      # ... then push both images
#   scripts/images.sh --check                           # build, then check (below)
#
#   --push ghcr.io/acme/otpilot:0.1.0 pushes ghcr.io/acme/otpilot/otpilot-operator:0.1.0 and
#     .../otpilot-sidecar:0.1.0 (TAG defaults to the workspace version). Registry credentials:
#     `skopeo login REGISTRY` first (or REGISTRY_AUTH_FILE). SKOPEO_FLAGS adds flags to
#     `skopeo copy`, e.g. --dest-tls-verify=false for a plain-HTTP registry.
#   --no-build   package the release binaries already built instead of running cargo.
#   --bin DIR    package the binaries in DIR (e.g. target/debug for scripts/run-local.sh);
#                implies --no-build. What ships is the release build.
#   --check      the images' properties (below), the same digest when built twice, and a push
#                to a registry started on loopback (Debian's docker-registry) read back with
#                skopeo inspect + copy. scripts/node-e2e.sh runs it.
#
# What is in an image: the binary at /usr/local/bin/otpilot-{operator,sidecar} (the
# entrypoint), its ELF interpreter and `ldd` libraries (glibc, libgcc_s: the host's, Debian
# 12's), Debian's CA bundle at /etc/ssl/certs/ca-certificates.crt, /etc/passwd+group with
# nonroot (65532), an empty /tmp. No shell, no package manager. Runs as 65532:65532.
# Labels: org.opencontainers.image.{source,revision,version,created,licenses,title}.
# Reproducible: the mtimes and `created` are SOURCE_DATE_EPOCH (default: the HEAD commit's
# time), entries sorted, 0:0 owners, normalised modes, gzip without a timestamp; same binaries
# and CA bundle -> same manifest digest (scripts/node/mkimage.py).
#
# The archives also carry local names (localhost/otpilot/{operator,sidecar}:dev), the ones
# `ctr images import` and `kind load image-archive` give them and the node tests use.
# linux/amd64 only: the toolchain here has no other target. arm64: see docs/images.md.
#
# Env: CARGO_TARGET_DIR (default ./target), OUT (default $CARGO_TARGET_DIR/images),
#      SOURCE_DATE_EPOCH, SKOPEO_FLAGS.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release
OUT=${OUT:-$TARGET/images}
say() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

build=1 check=0 push=""
while [ $# -gt 0 ]; do
  case $1 in
    --push) [ $# -ge 2 ] || die "--push needs REGISTRY/PREFIX[:TAG]"; push=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --bin) [ $# -ge 2 ] || die "--bin needs a directory"; BIN=$(cd "$2" && pwd); build=0; shift 2 ;;
    --check) check=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (scripts/images.sh --help)" ;;
  esac
done

VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
SOURCE=$(sed -n '/^\[workspace.package\]/,/^\[/s/^repository = "\(.*\)"/\1/p' Cargo.toml)
LICENSE=$(sed -n '/^\[workspace.package\]/,/^\[/s/^license = "\(.*\)"/\1/p' Cargo.toml)
REVISION=$(git rev-parse HEAD)
# A dirty tree is not the commit: say so in the label rather than claim the commit.
git diff --quiet HEAD -- . 2>/dev/null || REVISION=$REVISION-dirty
EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}
CREATED=$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

if [ "$build" = 1 ]; then
  t0=$(date +%s)
  # Without SOURCE_DATE_EPOCH: the cc crate's build scripts (ring, psm) rerun when it changes,
  # and with it every crate above them, so a per-commit value would make every build cold.
  env -u SOURCE_DATE_EPOCH cargo build --release --locked -p otpilot-operator -p otpilot-sidecar
  say "release build: $(( $(date +%s) - t0 ))s"
fi
for b in otpilot-operator otpilot-sidecar; do
  [ -x "$BIN/$b" ] || die "$BIN/$b missing (cargo build --release -p $b)"
done
source "$ROOT/scripts/lib/debian-packages.sh"
ensure_debian_packages images ca-certificates
[ -s "$CA_BUNDLE" ] || die "$CA_BUNDLE missing (Debian's ca-certificates: update-ca-certificates)"

# build_image COMPONENT OUT_DIR: one archive, OUT_DIR/COMPONENT.tar.
build_image() {
  local c=$1 dir=$2
  mkdir -p "$dir"
  SOURCE_DATE_EPOCH=$EPOCH IMAGE_USER=65532:65532 EXTRA=$CA_BUNDLE IMAGE_LABELS="org.opencontainers.image.title=otpilot-$c
org.opencontainers.image.source=$SOURCE
org.opencontainers.image.revision=$REVISION
org.opencontainers.image.version=$VERSION
org.opencontainers.image.created=$CREATED
org.opencontainers.image.licenses=$LICENSE" \
    "$ROOT/scripts/node/image.sh" "localhost/otpilot/$c:dev" "$dir/$c.tar" \
    "$BIN/otpilot-$c=/usr/local/bin/otpilot-$c" 2>/dev/null
}
# manifest_digest ARCHIVE: the digest a registry will show for the pushed image.
manifest_digest() {
  tar -xOf "$1" index.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifests"][0]["digest"])'
}

t0=$(date +%s)
for c in operator sidecar; do build_image "$c" "$OUT"; done
for c in operator sidecar; do
  say "$OUT/$c.tar $(manifest_digest "$OUT/$c.tar") ($(du -k "$OUT/$c.tar" | cut -f1) KiB)"
done
say "images built in $(( $(date +%s) - t0 ))s"

# The checks --check runs: properties of one archive, read from its bytes.
check_archive() {
  python3 - "$1" "$2" <<'EOF'
import io, json, sys, tarfile
path, comp = sys.argv[1], sys.argv[2]
outer = tarfile.open(path)
blob = lambda d: outer.extractfile("blobs/sha256/" + d.split(":", 1)[1]).read()
index = json.load(outer.extractfile("index.json"))
man = json.loads(blob(index["manifests"][0]["digest"]))
cfg = json.loads(blob(man["config"]["digest"]))
c = cfg["config"]
problems = []
if c.get("User") != "65532:65532": problems.append(f"User is {c.get('User')!r}, not 65532:65532")
if c.get("Entrypoint") != [f"/usr/local/bin/otpilot-{comp}"]: problems.append(f"Entrypoint {c.get('Entrypoint')}")
for k in ("source", "revision", "version", "created", "licenses"):
    if not c.get("Labels", {}).get("org.opencontainers.image." + k): problems.append("no label " + k)
layer = tarfile.open(fileobj=io.BytesIO(blob(man["layers"][0]["digest"])), mode="r:gz")
names = set()
for m in layer.getmembers():
    names.add(m.name)
    if m.uid or m.gid: problems.append(f"{m.name} owned by {m.uid}:{m.gid}")
for shell in ("bin/sh", "bin/bash", "bin/busybox", "usr/bin/sh", "usr/bin/bash"):
    if shell in names: problems.append("has a shell: " + shell)
for need in ("etc/ssl/certs/ca-certificates.crt", f"usr/local/bin/otpilot-{comp}", "etc/passwd", "tmp"):
    if need not in names: problems.append("missing " + need)
if problems:
    print(f"{path}: " + "; ".join(problems), file=sys.stderr); sys.exit(1)
EOF
}

# A registry on loopback for --check: Debian's docker-registry, storage in a temp dir,
# stopped by its PID on exit.
registry_pid="" scratch=""
cleanup() {
  [ -z "$registry_pid" ] || { kill "$registry_pid" 2>/dev/null; wait "$registry_pid" 2>/dev/null || true; }
  [ -z "$scratch" ] || rm -rf "$scratch"
}
trap cleanup EXIT
start_registry() {
  ensure_debian_packages images docker-registry
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$scratch/registry.yml" <<EOF
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $scratch/registry}}
http: {addr: 127.0.0.1:$port}
EOF
  docker-registry serve "$scratch/registry.yml" >"$scratch/registry.log" 2>&1 &
  registry_pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && { echo "127.0.0.1:$port"; return; }
    sleep 0.1
  done
  cat "$scratch/registry.log" >&2; die "the loopback registry did not start"
}

push_images() {
  local dest=$1 repo tag
  ensure_debian_packages images skopeo
  repo=${dest%:*} tag=${dest##*:}
  # No ":" after the last "/" means no tag (a registry's :port is not one).
  if [ "$repo" = "$dest" ] || [[ $tag == */* ]]; then repo=$dest tag=$VERSION; fi
  for c in operator sidecar; do
    # shellcheck disable=SC2086
    skopeo copy --quiet ${SKOPEO_FLAGS:-} "oci-archive:$OUT/$c.tar" "docker://$repo/otpilot-$c:$tag" >&2
    say "pushed $repo/otpilot-$c:$tag@$(manifest_digest "$OUT/$c.tar")"
  done
  cat >&2 <<EOF
Install the chart with these images (docs/images.md):
  helm install otpilot charts/otpilot -n otpilot-system --create-namespace \\
    --set operator.image.repository=$repo/otpilot-operator --set operator.image.tag=$tag \\
    --set sidecar.image.repository=$repo/otpilot-sidecar --set sidecar.image.tag=$tag
EOF
}

if [ "$check" = 1 ]; then
  scratch=$(mktemp -d)
  for c in operator sidecar; do
    check_archive "$OUT/$c.tar" "$c"
    # Reproducible: a second build, into another directory, gives the same bytes.
    build_image "$c" "$scratch/again"
    a=$(manifest_digest "$OUT/$c.tar") b=$(manifest_digest "$scratch/again/$c.tar")
    [ "$a" = "$b" ] || die "$c: not reproducible: $a then $b"
    cmp -s "$OUT/$c.tar" "$scratch/again/$c.tar" || die "$c: the archives differ"
  done
  say "check: non-root, no shell, CA bundle, labels; the same digests when built twice"
  reg=$(start_registry)
  SKOPEO_FLAGS="--dest-tls-verify=false" OUT=$OUT push_images "$reg/check/otpilot:t1"
  for c in operator sidecar; do
    want=$(manifest_digest "$OUT/$c.tar")
    got=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$reg/check/otpilot/otpilot-$c:t1")
    [ "$got" = "$want" ] || die "$c: the registry serves $got, the archive holds $want"
    skopeo copy --quiet --src-tls-verify=false "docker://$reg/check/otpilot/otpilot-$c:t1" "oci-archive:$scratch/pulled-$c.tar:t1" >&2
    user=$(skopeo inspect --config "oci-archive:$scratch/pulled-$c.tar" | python3 -c 'import json,sys; print(json.load(sys.stdin)["config"]["User"])')
    [ "$user" = 65532:65532 ] || die "$c: pulled image runs as $user"
  done
  say "check: pushed to a loopback registry and pulled back with skopeo, same digests"
fi

[ -z "$push" ] || push_images "$push"
