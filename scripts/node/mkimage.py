#!/usr/bin/env python3
"""Craft a single-layer OCI image archive (importable with `ctr -n k8s.io images import`)
from a rootfs directory, without any registry or Docker. Used by scripts/node/image.sh.

usage: mkimage.py NAME ROOTFS_DIR OUT.tar [--entrypoint JSON] [--cmd JSON]
NAME e.g. localhost/otpilot/sidecar:dev
"""
import argparse, gzip, hashlib, io, json, os, tarfile

ap = argparse.ArgumentParser()
ap.add_argument("name"); ap.add_argument("rootfs"); ap.add_argument("out")
ap.add_argument("--entrypoint", default="null"); ap.add_argument("--cmd", default="null")
a = ap.parse_args()

def reset(ti):
    ti.uid = ti.gid = 0; ti.uname = ti.gname = ""; ti.mtime = 0
    return ti

# layer: uncompressed tar (diff_id) then gzip (blob)
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
    for root, dirs, files in os.walk(a.rootfs):
        dirs.sort(); files.sort()
        for n in dirs + files:
            p = os.path.join(root, n)
            t.add(p, arcname=os.path.relpath(p, a.rootfs), recursive=False, filter=reset)
raw = raw.getvalue()
diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
gz = io.BytesIO()
with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=1) as g:
    g.write(raw)
layer = gz.getvalue()

blobs = {}
def blob(data, mt):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[d] = data
    return {"mediaType": mt, "digest": d, "size": len(data)}

cfg = {"architecture": "amd64", "os": "linux",
       "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                  "Entrypoint": json.loads(a.entrypoint), "Cmd": json.loads(a.cmd), "WorkingDir": "/"},
       "rootfs": {"type": "layers", "diff_ids": [diff_id]},
       "history": [{"created_by": "mkimage.py"}]}
cfg_d = blob(json.dumps(cfg, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json")
layer_d = blob(layer, "application/vnd.oci.image.layer.v1.tar+gzip")
man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "config": cfg_d, "layers": [layer_d]}
man_d = blob(json.dumps(man, sort_keys=True).encode(), "application/vnd.oci.image.manifest.v1+json")
man_d["platform"] = {"architecture": "amd64", "os": "linux"}
man_d["annotations"] = {"io.containerd.image.name": a.name,
                        "org.opencontainers.image.ref.name": a.name.rsplit(":", 1)[-1]}
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [man_d]}

with tarfile.open(a.out, "w") as t:
    def put(name, data):
        ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = 0o644
        t.addfile(ti, io.BytesIO(data))
    put("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    put("index.json", json.dumps(index).encode())
    for d, data in blobs.items():
        put("blobs/sha256/" + d.split(":", 1)[1], data)
print(a.out, man_d["digest"])
