"""Writes a Secret (JSON from `kubectl get secret -o json`, on stdin) into a
directory exactly as the kubelet lays out a Secret volume: the files in a
timestamped `..<time>` directory, a `..data` symlink to it, and one symlink
per key (`key -> ..data/key`). Running it again swaps `..data` atomically,
the way the kubelet rotates a mounted Secret.

  kubectl get secret NAME -o json | python3 scripts/secret-volume.py DIR
"""
import base64
import json
import os
import sys
import time

target = sys.argv[1]
secret = json.load(sys.stdin)
data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
os.makedirs(target, mode=0o700, exist_ok=True)
stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.") + str(time.time_ns())
payload = os.path.join(target, stamp)
os.mkdir(payload, 0o700)
for key, value in data.items():
    path = os.path.join(payload, key)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(value)
tmp = os.path.join(target, "..data_tmp")
if os.path.lexists(tmp):
    os.unlink(tmp)
os.symlink(stamp, tmp)
old = os.path.realpath(os.path.join(target, "..data")) if os.path.lexists(os.path.join(target, "..data")) else None
os.rename(tmp, os.path.join(target, "..data"))
for key in data:
    link = os.path.join(target, key)
    if not os.path.lexists(link):
        os.symlink(os.path.join("..data", key), link)
for entry in os.listdir(target):
    link = os.path.join(target, entry)
    if os.path.islink(link) and not entry.startswith("..") and entry not in data:
        os.unlink(link)
if old and os.path.isdir(old) and os.path.basename(old) != stamp:
    for name in os.listdir(old):
        os.unlink(os.path.join(old, name))
    os.rmdir(old)
