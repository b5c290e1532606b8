#!/usr/bin/env python3
"""Recompute an agentexec audit log's RFC 6962 Merkle root from its entry
bundles (C2SP tlog-tiles), independently of the Go code, and check the
prev hash chain. Usage: merkle.py LOGDIR SIZE. Prints the base64 root."""
import base64, hashlib, json, os, sys

def index_path(n):
    s = "%03d" % (n % 1000)
    while n >= 1000:
        n //= 1000
        s = "x%03d/%s" % (n % 1000, s)
    return s

def entries(logdir, size):
    out = []
    for b in range((size + 255) // 256):
        w = min(256, size - b * 256)
        p = os.path.join(logdir, "tile/entries", index_path(b) + ("" if w == 256 else ".p/%d" % w))
        data = open(p, "rb").read()
        i = 0
        while i < len(data) and len(out) < size:
            n = int.from_bytes(data[i:i + 2], "big")
            out.append(data[i + 2:i + 2 + n])
            i += 2 + n
    return out

def mth(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()

logdir, size = sys.argv[1], int(sys.argv[2])
es = entries(logdir, size)
assert len(es) == size, "found %d entries, want %d" % (len(es), size)
prev = ""
for seq, e in enumerate(es):
    rec = json.loads(base64.b64decode(json.loads(e)["payload"]))
    assert rec["seq"] == seq, "record %d has seq %d" % (seq, rec["seq"])
    assert rec.get("prev", "") == prev, "record %d breaks the chain" % seq
    prev = "sha256:" + hashlib.sha256(e).hexdigest()
sys.setrecursionlimit(10000)
print(base64.b64encode(mth(es)).decode())
