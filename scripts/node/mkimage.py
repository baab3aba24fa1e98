#!/usr/bin/env python3
"""Craft a single-layer OCI image archive (`ctr images import`, `skopeo copy oci-archive:`,
`kind load image-archive`) from a rootfs directory, without any registry or Docker. Used by
scripts/node/image.sh (and through it scripts/images.sh, the shipped images).

usage: mkimage.py NAME ROOTFS_DIR OUT.tar [--entrypoint JSON] [--cmd JSON] [--user U:G]
                  [--label KEY=VALUE]... [--created RFC3339] [--epoch SECONDS] [--arch amd64|arm64]
NAME e.g. localhost/otpilot/sidecar:dev. Prints "OUT.tar MANIFEST_DIGEST".

Reproducible: the same rootfs contents and arguments give the same bytes, so the same manifest
digest. Entries are sorted, owned by 0:0 with no user/group names, their mtime is --epoch
(SOURCE_DATE_EPOCH, the commit's time), modes are normalised (0755 for directories and
executables, 0644 for other files, 1777 for /tmp), gzip carries no name and no mtime.
"""
import argparse, gzip, hashlib, io, json, os, tarfile

ap = argparse.ArgumentParser()
ap.add_argument("name"); ap.add_argument("rootfs"); ap.add_argument("out")
ap.add_argument("--entrypoint", default="null"); ap.add_argument("--cmd", default="null")
ap.add_argument("--user", default="")
ap.add_argument("--label", action="append", default=[])
ap.add_argument("--created", default="1970-01-01T00:00:00Z")
ap.add_argument("--epoch", type=int, default=0)
ap.add_argument("--arch", default="amd64")
a = ap.parse_args()


def normalise(ti):
    ti.uid = ti.gid = 0; ti.uname = ti.gname = ""; ti.mtime = a.epoch
    ti.pax_headers = {}
    if ti.isdir():
        ti.mode = 0o1777 if ti.name == "tmp" else 0o755
    elif ti.issym():
        ti.mode = 0o777
    else:
        ti.mode = 0o755 if ti.mode & 0o111 else 0o644
    return ti


# layer: uncompressed tar (diff_id) then gzip (blob). USTAR/GNU, no PAX times or atime.
paths = []
for root, dirs, files in os.walk(a.rootfs):
    for n in dirs + files:
        paths.append(os.path.relpath(os.path.join(root, n), a.rootfs))
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as t:
    for rel in sorted(paths):
        t.add(os.path.join(a.rootfs, rel), arcname=rel, recursive=False, filter=normalise)
raw = raw.getvalue()
diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
gz = io.BytesIO()
with gzip.GzipFile(filename="", fileobj=gz, mode="wb", mtime=0, compresslevel=9) as g:
    g.write(raw)
layer = gz.getvalue()

blobs = {}


def blob(data, mt):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[d] = data
    return {"mediaType": mt, "digest": d, "size": len(data)}


labels = dict(kv.split("=", 1) for kv in a.label)
config = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
          "Entrypoint": json.loads(a.entrypoint), "Cmd": json.loads(a.cmd), "WorkingDir": "/"}
if a.user:
    config["User"] = a.user
if labels:
    config["Labels"] = labels
cfg = {"architecture": a.arch, "os": "linux", "created": a.created, "config": config,
       "rootfs": {"type": "layers", "diff_ids": [diff_id]},
       "history": [{"created": a.created, "created_by": "scripts/node/mkimage.py"}]}
cfg_d = blob(json.dumps(cfg, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json")
layer_d = blob(layer, "application/vnd.oci.image.layer.v1.tar+gzip")
man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "config": cfg_d, "layers": [layer_d]}
if labels:
    man["annotations"] = labels
man_d = blob(json.dumps(man, sort_keys=True).encode(), "application/vnd.oci.image.manifest.v1+json")
man_d["platform"] = {"architecture": a.arch, "os": "linux"}
man_d["annotations"] = {"io.containerd.image.name": a.name,
                        "org.opencontainers.image.ref.name": a.name.rsplit(":", 1)[-1]}
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [man_d]}

with tarfile.open(a.out, "w", format=tarfile.GNU_FORMAT) as t:
    def put(name, data):
        ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = 0o644; ti.mtime = a.epoch
        t.addfile(ti, io.BytesIO(data))
    put("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    put("index.json", json.dumps(index, sort_keys=True).encode())
    for d in sorted(blobs):
        put("blobs/sha256/" + d.split(":", 1)[1], blobs[d])
print(a.out, man_d["digest"])
