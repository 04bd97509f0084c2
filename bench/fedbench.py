#!/usr/bin/env python3
"""Helpers for bench/federation (standard library only).

Subcommands (each prints one JSON object on stdout, progress on stderr):
  image DIR MIB                     an OCI layout in DIR (tag "latest") with a
                                    config and one random MIB MiB layer
                                    (gzip of a tar, stored blocks: incompressible)
  blob FILE MIB                     a random file; prints its digest and size
  token TOPOLOGY NODE SCOPE         a Bearer token for NODE (cloud, fog-1, ...)
                                    from the token service its 401 names, with
                                    the sandbox's admin credentials
  push-blob TOPOLOGY REPO FILE      monolithic upload of FILE to the cloud
  wait TOPOLOGY REPO TAG N TIMEOUT  poll the cloud's /api/v1/replication every
                                    50 ms until the N tasks of REPO:TAG are done
                                    (or failed, or TIMEOUT s); prints when each
                                    task was first seen running and done
  uplink LOG OFFSET                 blob GETs in the cloud's access log from byte
                                    OFFSET on: bytes sent per digest and user
  slow-peers NODE=LOG:OFFSET...     peer HEADs a fog took over 1 s to answer
  holds TOPOLOGY NODE REPO DIGEST SIZE  HEAD the blob on NODE (with a token) and
                                    look for the file in NODE's store
  table RESULTS.tsv                 the Markdown table (KEY<TAB>VALUE lines)
  node TOPOLOGY NODE FIELD          a field of a node (NODE admin: of the admin)
  rate RATE                         a tc rate in bit/s
"""
import base64
import hashlib
import http.client
import io
import json
import os
import re
import ssl
import sys
import tarfile
import time
import urllib.parse
import zlib

MiB = 1 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"


def log(*a):
    print("  ", *a, file=sys.stderr, flush=True)


def out(obj):
    print(json.dumps(obj), flush=True)


# ---------------------------------------------------------------- content
def write_random(f, nbytes, hashers=()):
    left = nbytes
    while left:
        chunk = os.urandom(min(left, 4 * MiB))
        f.write(chunk)
        for h in hashers:
            h.update(chunk)
        left -= len(chunk)


class HashingWriter(io.RawIOBase):
    """A file-like sink that hashes and counts what goes through it."""

    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def writable(self):
        return True

    def write(self, b):
        self.f.write(b)
        self.h.update(b)
        self.n += len(b)
        return len(b)


def put_blob(layout, data=None, path=None):
    """Move/write a blob into LAYOUT/blobs/sha256; returns (digest, size)."""
    bdir = os.path.join(layout, "blobs", "sha256")
    os.makedirs(bdir, exist_ok=True)
    if data is not None:
        hexd = hashlib.sha256(data).hexdigest()
        with open(os.path.join(bdir, hexd), "wb") as f:
            f.write(data)
        return "sha256:" + hexd, len(data)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * MiB)
            if not b:
                break
            h.update(b)
    os.rename(path, os.path.join(bdir, h.hexdigest()))
    return "sha256:" + h.hexdigest(), os.path.getsize(os.path.join(bdir, h.hexdigest()))


def cmd_image(layout, mib):
    """A one-layer image whose layer is MIB MiB of random bytes in a tar,
    gzip-wrapped with stored (level 0) deflate blocks: clients keep it as it
    is (it is already "compressed") and no byte of it can be compressed."""
    mib = int(mib)
    os.makedirs(layout, exist_ok=True)
    payload = os.path.join(layout, "payload.tmp")
    with open(payload, "wb") as f:
        write_random(f, mib * MiB)
    tmp = os.path.join(layout, "layer.tmp")
    with open(tmp, "wb") as raw:
        gz_sink = HashingWriter(raw)
        # gzip by hand so the uncompressed tar's digest (the diff_id) comes
        # out on the way, without a second pass
        comp = zlib.compressobj(0, zlib.DEFLATED, 31)
        tar_h = hashlib.sha256()

        class TarSink(io.RawIOBase):
            def writable(self):
                return True

            def write(self, b):
                tar_h.update(b)
                gz_sink.write(comp.compress(bytes(b)))
                return len(b)

        with tarfile.open(fileobj=TarSink(), mode="w|", format=tarfile.PAX_FORMAT) as tf:
            ti = tarfile.TarInfo("payload.bin")
            ti.size = mib * MiB
            ti.mode = 0o644
            ti.mtime = int(time.time())
            with open(payload, "rb") as pf:
                tf.addfile(ti, pf)
        gz_sink.write(comp.flush())
    os.unlink(payload)
    layer_digest, layer_size = put_blob(layout, path=tmp)
    diff_id = "sha256:" + tar_h.hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/payload.bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "fogport bench/federation: %d MiB of random bytes" % mib}],
    }, separators=(",", ":")).encode()
    config_digest, config_size = put_blob(layout, data=config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": OCI_LAYER_GZ, "digest": layer_digest, "size": layer_size}],
    }, separators=(",", ":")).encode()
    manifest_digest, manifest_size = put_blob(layout, data=manifest)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{
            "mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
    out({"layer": layer_digest, "layer_size": layer_size, "config": config_digest,
         "config_size": config_size, "manifest": manifest_digest, "manifest_size": manifest_size})


def cmd_blob(path, mib):
    h = hashlib.sha256()
    with open(path, "wb") as f:
        write_random(f, int(mib) * MiB, (h,))
    out({"digest": "sha256:" + h.hexdigest(), "size": int(mib) * MiB})


# ---------------------------------------------------------------- HTTPS
class Topology:
    def __init__(self, path):
        with open(path) as f:
            self.t = json.load(f)
        self.ctx = ssl.create_default_context(cafile=self.t["ca"])
        self.user = self.t["admin"]["user"]
        self.password = self.t["admin"]["password"]

    def node(self, nid):
        for n in self.t["nodes"]:
            if n["id"] == nid:
                return n
        raise SystemExit("no node %s in the topology" % nid)

    def conn(self, url):
        u = urllib.parse.urlsplit(url)
        return http.client.HTTPSConnection(u.hostname, u.port, context=self.ctx, timeout=30)

    def basic(self):
        return "Basic " + base64.b64encode(("%s:%s" % (self.user, self.password)).encode()).decode()

    def token(self, nid, scope):
        base = self.node(nid)["registry"]
        c = self.conn(base)
        c.request("GET", "/v2/")
        r = c.getresponse()
        r.read()
        chal = r.getheader("WWW-Authenticate", "")
        if r.status != 401 or not chal.lower().startswith("bearer "):
            raise SystemExit("%s /v2/: %d %r, not a Bearer challenge" % (nid, r.status, chal))
        params = dict(re.findall(r'(\w+)="([^"]*)"', chal))
        realm = params["realm"]
        q = {"service": params.get("service", ""), "scope": scope}
        rc = self.conn(realm)
        u = urllib.parse.urlsplit(realm)
        rc.request("GET", u.path + "?" + urllib.parse.urlencode(q),
                   headers={"Authorization": self.basic()})
        rr = rc.getresponse()
        body = rr.read()
        if rr.status != 200:
            raise SystemExit("token from %s: %d %r" % (realm, rr.status, body[:200]))
        tok = json.loads(body)
        return tok.get("token") or tok.get("access_token"), params.get("service", ""), realm


def cmd_token(topology, nid, scope):
    tok, service, realm = Topology(topology).token(nid, scope)
    out({"token": tok, "service": service, "realm": realm})


def cmd_push_blob(topology, repo, path):
    t = Topology(topology)
    tok, _, _ = t.token("cloud", "repository:%s:pull,push" % repo)
    base = t.node("cloud")["registry"]
    h = hashlib.sha256()
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * MiB)
            if not b:
                break
            h.update(b)
    digest = "sha256:" + h.hexdigest()
    auth = {"Authorization": "Bearer " + tok}
    c = t.conn(base)
    c.request("POST", "/v2/%s/blobs/uploads/" % repo, headers=dict(auth, **{"Content-Length": "0"}))
    r = c.getresponse()
    r.read()
    if r.status != 202:
        raise SystemExit("POST upload: %d" % r.status)
    loc = urllib.parse.urlsplit(r.getheader("Location"))
    target = loc.path + "?" + (loc.query + "&" if loc.query else "") + "digest=" + digest
    with open(path, "rb") as f:
        c.request("PUT", target, body=f, headers=dict(auth, **{
            "Content-Length": str(size), "Content-Type": "application/octet-stream"}))
        r = c.getresponse()
        r.read()
    if r.status != 201:
        raise SystemExit("PUT upload: %d" % r.status)
    out({"digest": digest, "size": size})


def cmd_wait(topology, repo, tag, n, timeout):
    """Poll the replication tasks; times are seconds since the epoch."""
    t = Topology(topology)
    base = t.node("cloud")["api"]
    n, deadline = int(n), time.time() + float(timeout)
    c = t.conn(base)
    first = {}
    last = []
    while True:
        now = time.time()
        try:
            c.request("GET", "/api/v1/replication", headers={"Authorization": t.basic()})
            r = c.getresponse()
            body = r.read()
        except (OSError, http.client.HTTPException):
            c.close()
            c = t.conn(base)
            time.sleep(0.05)
            continue
        if r.status == 200:
            last = [x for x in json.loads(body).get("tasks", [])
                    if x.get("repo") == repo and x.get("tag") == tag]
            for x in last:
                for st in (x["state"],) if x["state"] != "done" else ("running", "done"):
                    first.setdefault((x["node"], st), now)
        states = [x["state"] for x in last]
        if len(last) >= n and all(s in ("done", "failed") for s in states):
            break
        if now > deadline:
            break
        time.sleep(0.05)
    tasks = []
    for x in sorted(last, key=lambda x: x["node"]):
        tasks.append({"node": x["node"], "state": x["state"], "via": x.get("via") or "cloud",
                      "bytes": x.get("bytes", 0), "error": x.get("error", ""),
                      "attempts": x.get("attempts", 0),
                      "seen_running": first.get((x["node"], "running")),
                      "seen_done": first.get((x["node"], "done"))})
    ok = len(last) >= n and all(x["state"] == "done" for x in last)
    out({"ok": ok, "end": max([x["seen_done"] or 0 for x in tasks] or [0]), "tasks": tasks})


# ---------------------------------------------------------------- logs
REQ = re.compile(r'event=request .*?user=(\S+) method=(\S+) path="([^"]*)" status=(\d+) '
                 r'in=(\d+) out=(\d+)')


def cmd_uplink(logpath, offset):
    """Bytes the cloud sent for blob GETs, from byte OFFSET of its log."""
    per = {}
    total_out = 0
    with open(logpath, "rb") as f:
        f.seek(int(offset))
        for raw in f:
            m = REQ.search(raw.decode("utf-8", "replace"))
            if not m:
                continue
            user, method, path, status, _, nout = m.groups()
            total_out += int(nout)
            bm = re.search(r"/blobs/(sha256:[0-9a-f]{64})", path)
            if method != "GET" or not bm:
                continue
            d = per.setdefault(bm.group(1), {})
            u = d.setdefault(user, {"bytes": 0, "requests": 0, "statuses": []})
            u["bytes"] += int(nout)
            u["requests"] += 1
            u["statuses"].append(int(status))
    out({"blobs": per, "all_out": total_out})


def cmd_slow_peers(*specs):
    """Peer HEADs that took over a second, from NODE=LOG:OFFSET specs: a fog
    answers a peer's HEAD of a blob it is itself fetching only once its fetch
    knows the size, so a long HEAD means a fetch waited on another."""
    slow = []
    for spec in specs:
        node, _, rest = spec.partition("=")
        logpath, _, offset = rest.rpartition(":")
        with open(logpath, "rb") as f:
            f.seek(int(offset))
            for raw in f:
                line = raw.decode("utf-8", "replace")
                m = REQ.search(line)
                ms = re.search(r" ms=([0-9.]+)", line)
                if not m or not ms or not m.group(1).startswith("fog-") or m.group(2) != "HEAD":
                    continue
                if float(ms.group(1)) < 1000:
                    continue
                d = re.search(r"sha256:([0-9a-f]{12})", m.group(3))
                t = re.search(r"time=\S*T([0-9:.]+)Z", line)
                slow.append("%s answered %s's HEAD of %s after %.1f s (at %s)" % (
                    node, m.group(1), d.group(1) + "…" if d else m.group(3),
                    float(ms.group(1)) / 1000, t.group(1) if t else "?"))
    out({"slow": slow})


def cmd_holds(topology, nid, repo, digest, size):
    t = Topology(topology)
    tok, _, _ = t.token(nid, "repository:%s:pull" % repo)
    c = t.conn(t.node(nid)["registry"])
    # Fogport-Peer: answer from what the node holds, never fetch it
    c.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest),
              headers={"Authorization": "Bearer " + tok, "Fogport-Peer": "1"})
    r = c.getresponse()
    r.read()
    hexd = digest.split(":", 1)[1]
    f = os.path.join(t.node(nid)["data"], "data", "blobs", "sha256", hexd[:2], hexd)
    on_disk = os.path.getsize(f) if os.path.exists(f) else -1
    out({"node": nid, "head": r.status, "length": int(r.getheader("Content-Length") or -1),
         "file": on_disk, "ok": r.status == 200 and on_disk == int(size)})


# ---------------------------------------------------------------- report
def fnum(v, nd=2):
    return "—" if v is None else ("{:,.%df}" % nd).format(v)


def cmd_table(path):
    """The Markdown table from bench/federation's KEY<TAB>VALUE lines."""
    r = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            r[k] = v
    num = lambda k: float(r[k]) if r.get(k, "").strip() not in ("", "?") else None
    lst = lambda k: [float(x) for x in r.get(k, "").split()]
    one, rep, dpath = num("one_s"), num("replication_s"), num("datapath_s")
    naive, delay = num("naive_s"), num("seed_delay_s")
    up_rep, up_naive = num("uplink_rep"), num("uplink_naive")
    rep_ok, naive_ok = r.get("rep_ok") == "1", r.get("naive_ok") == "1"
    mib, n = r.get("mib", "?"), int(r.get("rounds", "0"))
    ratio = lambda v: None if v is None or not one else v / one
    reps = lst("rep_list")
    hits = sum(1 for v in reps if one and v / one <= 1.3)
    rows = [
        ("One transfer: GET of the %s MiB layer from the cloud (median of %d)" % (
            mib, len(lst("one_list"))), "s",
         one, ratio(one), "—", ""),
        ("Replication to 3 fogs: push done → all 3 tasks done (median of %d rounds)" % n, "s",
         rep, ratio(rep), "≤ 1.3×",
         "✅" if rep_ok and ratio(rep) is not None and ratio(rep) <= 1.3 else "❌"),
        ("… of it, until the seed fog took its task (median)", "s", delay, ratio(delay), "—", ""),
        ("… of it, seed took its task → all 3 done (median)", "s", dpath, ratio(dpath), "—", ""),
        ("Naive: the 3 fogs each copy from the cloud at once (skopeo), all done", "s", naive,
         ratio(naive), "≈ 3× (comparison)", "" if naive_ok else "❌"),
    ]
    print("| Measurement | Unit | Value | ÷ one transfer | Target | Met |")
    print("|---|---|--:|--:|---|:-:|")
    for name, unit, v, rt, target, met in rows:
        print("| %s | %s | %s | %s | %s | %s |" % (
            name, unit, fnum(v), (fnum(rt) + "×") if rt is not None else "—", target, met))
    ups = lst("upl_list")
    up_med = sorted(ups)[len(ups) // 2] if ups else None
    print("| Cloud uplink bytes per blob, replication (layer, median of rounds) | × blob size | %s "
          "| — | ≈ 1× | %s |" % (fnum(up_med), "✅" if rep_ok and up_med is not None and
                                 up_med < 1.05 else "❌"))
    print("| Cloud uplink bytes per blob, replication (layer, worst round) | × blob size | %s "
          "| — | ≈ 1× | %s |" % (fnum(up_rep), "✅" if rep_ok and up_rep is not None and
                                 up_rep < 1.05 else "❌"))
    print("| Cloud uplink bytes per blob, naive (layer) | × blob size | %s | — | ≈ 3× (comparison) "
          "|  |" % fnum(up_naive))
    print()
    if one and reps:
        print("- Replication ÷ one transfer per round: %s (%d of %d rounds ≤ 1.3×); until the seed "
              "took its task, s: %s; seed → all done, s: %s; uplink bytes per layer byte: %s." % (
                  ", ".join("%.2f×" % (v / one) for v in reps), hits, len(reps),
                  ", ".join("%.2f" % v for v in lst("delay_list")),
                  ", ".join("%.2f" % v for v in lst("path_list")),
                  ", ".join("%.3f" % v for v in lst("upl_list"))))
    print("- Uplink check (the same %s MiB GET): %s s unshaped, %s s shaped." % (
        mib, fnum(num("unshaped_s")), fnum(num("shaped_probe_s"))))
    if not rep_ok:
        print("- **replication did not complete in every round** (see the notes and detail)")


def cmd_node(topology, nid, field):
    """A field of a node in topology.json (or of the admin: NODE = admin)."""
    with open(topology) as f:
        t = json.load(f)
    if nid == "admin":
        print(t["admin"][field])
        return
    print([n for n in t["nodes"] if n["id"] == nid][0][field])


def cmd_rate(rate):
    """A tc rate (200mbit, 1gbit, 500kbit, 100mbps ...) in bits per second."""
    m = re.fullmatch(r"([0-9.]+)([kmgt]?)(bit|bps)?", rate.lower())
    if not m:
        raise SystemExit("cannot read the rate %r" % rate)
    v = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}[m.group(2)]
    print(v * 8 if m.group(3) == "bps" else v)


def main(argv):
    cmds = {"image": cmd_image, "blob": cmd_blob, "token": cmd_token, "push-blob": cmd_push_blob,
            "wait": cmd_wait, "uplink": cmd_uplink, "holds": cmd_holds,
            "slow-peers": cmd_slow_peers,
            "table": cmd_table, "node": cmd_node,
            "rate": cmd_rate}
    if len(argv) < 2 or argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    cmds[argv[1]](*argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
