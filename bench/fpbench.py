#!/usr/bin/env python3
"""Measurement helpers for bench/run (stdlib only, no third-party modules).

The HTTP client here is deliberately tiny: one keep-alive TCP connection,
request bodies sent from the file with sendfile(2) (zero-copy, so the client
costs next to nothing on uploads) and response bodies received into one
reusable buffer and dropped (no per-chunk allocation on downloads).

Subcommands (each prints one JSON object on stdout, progress on stderr):
  gen FILE MIB                    random file + FILE.sha256
  push URL REPO FILE              untimed monolithic upload (set-up)
  upload URL REPO MODE CHUNK PID FILE...  timed uploads, MODE mono|chunked
  setup-small URL REPO NTAGS      push config+layer+manifest and NTAGS tags
  token URL USER PASSWORD SCOPE   fetch a token (GET /auth/token, Basic credentials)
  download URL PATH SIZE SECS PID timed downloads + server CPU per GiB
  startup URL LOG -- ARGV...      exec -> first 200 on URL, in seconds
  mem PID                         VmRSS/VmHWM in KiB
  cpu PID                         utime+stime of PID and its descendants
  monitor ROOTPID FILE            log CPU used by processes outside ROOTPID's tree
  foreign FILE T0 T1              mean of that between two times
  report RESULTS.tsv META.tsv     the Markdown results table

With BENCH_AUTHORIZATION set (e.g. "Bearer TOKEN"), every request of this
client carries it as its Authorization header (set-up pushes to a registry
in token mode).
"""
import base64
import hashlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse

MiB = 1 << 20
GiB = 1 << 30
CLK_TCK = os.sysconf("SC_CLK_TCK")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
AUTHORIZATION = os.environ.get("BENCH_AUTHORIZATION", "")


def log(*a):
    print("  ", *a, file=sys.stderr, flush=True)


def out(obj):
    print(json.dumps(obj), flush=True)


# ---------------------------------------------------------------- HTTP client
class HTTPError(Exception):
    pass


class Conn:
    """A minimal HTTP/1.1 keep-alive client over one socket."""

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.host = u.hostname
        self.port = u.port or 80
        self.hosthdr = u.netloc
        self.sock = None
        self.rbuf = b""
        self.sink = bytearray(4 * MiB)
        self.sinkview = memoryview(self.sink)

    def _connect(self):
        self.sock = socket.create_connection((self.host, self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rbuf = b""

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock = None

    def request(self, method, target, headers=None, body=None, fileobj=None, offset=0,
                count=0, discard=False, hasher=None):
        """Send a request and read the whole response. body is bytes, or the
        body is COUNT bytes of fileobj from OFFSET, sent with sendfile.
        Returns (status, headers{lowercase: value}, body bytes or length)."""
        if self.sock is None:
            self._connect()
        h = {"Host": self.hosthdr, "User-Agent": "fogport-bench"}
        if AUTHORIZATION:
            h["Authorization"] = AUTHORIZATION
        if headers:
            h.update(headers)
        if body is not None:
            h["Content-Length"] = str(len(body))
        elif fileobj is not None:
            h["Content-Length"] = str(count)
        elif method in ("POST", "PUT", "PATCH"):
            h["Content-Length"] = "0"
        head = "%s %s HTTP/1.1\r\n%s\r\n" % (
            method, target, "".join("%s: %s\r\n" % kv for kv in h.items()))
        self.sock.sendall(head.encode())
        if body:
            self.sock.sendall(body)
        elif fileobj is not None and count:
            self.sock.sendfile(fileobj, offset, count)
        return self._response(method, discard, hasher)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise HTTPError("connection closed by server")
        self.rbuf += chunk

    def _line(self):
        while b"\r\n" not in self.rbuf:
            self._fill()
        line, self.rbuf = self.rbuf.split(b"\r\n", 1)
        return line

    def _exact(self, n, discard, hasher, parts):
        # buffered bytes first, then straight from the socket
        if self.rbuf:
            take = self.rbuf[:n]
            self.rbuf = self.rbuf[n:]
            n -= len(take)
            if hasher:
                hasher.update(take)
            if not discard:
                parts.append(take)
        view = self.sinkview
        while n > 0:
            got = self.sock.recv_into(view, min(n, len(view)))
            if not got:
                raise HTTPError("connection closed mid-body")
            if hasher:
                hasher.update(view[:got])
            if not discard:
                parts.append(bytes(view[:got]))
            n -= got

    def _response(self, method, discard, hasher):
        while b"\r\n\r\n" not in self.rbuf:
            self._fill()
        raw, self.rbuf = self.rbuf.split(b"\r\n\r\n", 1)
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1])
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        body = []
        length = 0
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            pass
        elif "chunked" in hdrs.get("transfer-encoding", "").lower():
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                self._exact(size, discard, hasher, body)
                length += size
                self._line()
        elif "content-length" in hdrs:
            length = int(hdrs["content-length"])
            self._exact(length, discard, hasher, body)
        else:  # read to close
            while True:
                try:
                    self._fill()
                except HTTPError:
                    break
            length = len(self.rbuf)
            body.append(self.rbuf)
            self.rbuf = b""
            self.close()
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return status, hdrs, (length if discard else b"".join(body))


def expect(resp, codes, what):
    status, hdrs, body = resp
    if status not in codes:
        snippet = body[:300] if isinstance(body, bytes) else b""
        raise HTTPError("%s: HTTP %d %r" % (what, status, snippet))
    return resp


def location_target(loc):
    """Location may be absolute (Distribution) or a path (others)."""
    u = urllib.parse.urlsplit(loc)
    return u.path + ("?" + u.query if u.query else "")


def with_digest(target, digest):
    return target + ("&" if "?" in target else "?") + "digest=" + urllib.parse.quote(digest)


def sha256_file(path):
    side = path + ".sha256"
    if os.path.exists(side) and os.path.getmtime(side) >= os.path.getmtime(path):
        return open(side).read().strip()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * MiB)
            if not b:
                break
            h.update(b)
    d = "sha256:" + h.hexdigest()
    with open(side, "w") as f:
        f.write(d + "\n")
    return d


def upload_mono(c, repo, f, size, digest):
    st, h, _ = expect(c.request("POST", "/v2/%s/blobs/uploads/" % repo), (202,), "POST upload")
    tgt = with_digest(location_target(h["location"]), digest)
    expect(c.request("PUT", tgt, {"Content-Type": "application/octet-stream"},
                     fileobj=f, offset=0, count=size), (201,), "PUT blob")


def upload_chunked(c, repo, f, size, digest, chunk):
    st, h, _ = expect(c.request("POST", "/v2/%s/blobs/uploads/" % repo), (202,), "POST upload")
    tgt = location_target(h["location"])
    off = 0
    while off < size:
        n = min(chunk, size - off)
        st, h, _ = expect(c.request("PATCH", tgt, {
            "Content-Type": "application/octet-stream",
            "Content-Range": "%d-%d" % (off, off + n - 1)},
            fileobj=f, offset=off, count=n), (202,), "PATCH chunk at %d" % off)
        tgt = location_target(h["location"])
        off += n
    expect(c.request("PUT", with_digest(tgt, digest)), (201,), "PUT close upload")


def push_bytes(c, repo, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    st, h, _ = expect(c.request("POST", "/v2/%s/blobs/uploads/" % repo), (202,), "POST upload")
    tgt = with_digest(location_target(h["location"]), d)
    expect(c.request("PUT", tgt, {"Content-Type": "application/octet-stream"}, body=data),
           (201,), "PUT blob")
    return d


# ---------------------------------------------------------------- /proc
def proc_tree(pid):
    """pid and all its descendants."""
    children = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % e) as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(e))
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(children.get(p, []))
    return seen


def cpu_seconds(pid):
    """utime+stime (whole thread group, live and exited threads) summed over
    the process tree rooted at pid."""
    total = 0
    for p in proc_tree(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / CLK_TCK


def mem_kib(pid):
    r = {}
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:", "RssShmem:", "Threads:")):
                r[ln.split(":")[0]] = int(ln.split()[1])
    try:  # proportional share: shared library pages divided among their users
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for ln in f:
                if ln.startswith("Pss:"):
                    r["Pss"] = int(ln.split()[1])
    except OSError:
        pass
    return r


def proc_times():
    """{pid: (ppid, utime+stime+cutime+cstime in ticks)} for user processes."""
    r = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % e) as f:
                st = f.read()
        except OSError:
            continue
        fl = st[st.rindex(")") + 2:].split()
        ppid = int(fl[1])
        if ppid == 2 or int(e) == 2:  # kernel threads
            continue
        r[int(e)] = (ppid, int(fl[11]) + int(fl[12]) + int(fl[13]) + int(fl[14]))
    return r


def outside(snap, root):
    """pids in snap that do not descend from root."""
    res = []
    for pid in snap:
        p, hops = pid, 0
        while p in snap and p != root and hops < 64:
            p, hops = snap[p][0], hops + 1
        if p != root:
            res.append(pid)
    return res


def cmd_monitor(root, outpath, interval="0.5"):
    """Until root exits: every interval, the CPU (% of the whole machine) used
    by processes outside root's tree, i.e. by anything but this benchmark."""
    root, interval = int(root), float(interval)
    ncpu = os.cpu_count() or 1
    prev = proc_times()
    t_prev = time.time()
    with open(outpath, "a", buffering=1) as f:
        while os.path.exists("/proc/%d" % root):
            time.sleep(interval)
            cur = proc_times()
            now = time.time()
            ticks = 0
            for pid in outside(cur, root):
                before = prev.get(pid)
                ticks += cur[pid][1] - (before[1] if before and before[0] == cur[pid][0] else 0)
            pct = 100.0 * ticks / CLK_TCK / (now - t_prev) / ncpu
            f.write("%.3f %.1f\n" % (now, max(0.0, min(100.0, pct))))
            prev, t_prev = cur, now


def cmd_foreign(path, t0, t1):
    """Mean of the monitor's samples between t0 and t1."""
    t0, t1 = float(t0), float(t1)
    vals = []
    try:
        with open(path) as f:
            for ln in f:
                t, v = ln.split()
                if t0 < float(t) <= t1 + 0.5:
                    vals.append(float(v))
    except OSError:
        pass
    print("%.0f" % (sum(vals) / len(vals)) if vals else "0")


# ---------------------------------------------------------------- subcommands
def cmd_gen(path, mib):
    size = int(mib) * MiB
    if not (os.path.exists(path) and os.path.getsize(path) == size):
        with open(path, "wb") as f:
            left = size
            while left:
                n = min(left, 8 * MiB)
                f.write(os.urandom(n))
                left -= n
    out({"file": path, "bytes": size, "digest": sha256_file(path)})


def cmd_push(url, repo, path):
    c = Conn(url)
    size = os.path.getsize(path)
    d = sha256_file(path)
    with open(path, "rb") as f:
        upload_mono(c, repo, f, size, d)
    st, h, _ = c.request("HEAD", "/v2/%s/blobs/%s" % (repo, d))
    if st != 200 or int(h.get("content-length", -1)) != size:
        raise HTTPError("HEAD after push: %d %s" % (st, h))
    out({"digest": d, "bytes": size})


def cmd_upload(url, repo, mode, chunk, pid, paths):
    chunk, pid = int(chunk), int(pid)
    c = Conn(url)
    c.request("GET", "/v2/")  # connect outside the timed part
    files = [(p, os.path.getsize(p), sha256_file(p)) for p in paths]
    total = sum(s for _, s, _ in files)
    s0 = cpu_seconds(pid) if pid else 0
    c0 = os.times()
    t0 = time.perf_counter()
    for p, size, d in files:
        with open(p, "rb") as f:
            if mode == "mono":
                upload_mono(c, repo, f, size, d)
            else:
                upload_chunked(c, repo, f, size, d, chunk)
    dt = time.perf_counter() - t0
    c1 = os.times()
    s1 = cpu_seconds(pid) if pid else 0
    ccpu = (c1.user - c0.user) + (c1.system - c0.system)
    # verify every blob landed with the right size (untimed)
    for p, size, d in files:
        st, h, _ = c.request("HEAD", "/v2/%s/blobs/%s" % (repo, d))
        if st != 200 or int(h.get("content-length", -1)) != size:
            raise HTTPError("blob %s missing after upload: %d" % (d, st))
    out({"bytes": total, "seconds": dt, "mib_s": total / MiB / dt,
         "server_cpu_pct": 100.0 * (s1 - s0) / dt, "client_cpu_pct": 100.0 * ccpu / dt})


def cmd_setup_small(url, repo, ntags):
    c = Conn(url)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []},
                         "config": {}}).encode()
    layer = os.urandom(4096)
    cd = push_bytes(c, repo, config)
    ld = push_bytes(c, repo, layer)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": ld, "size": len(layer)}],
    }, indent=3).encode()
    md = "sha256:" + hashlib.sha256(manifest).hexdigest()
    tags = ["latest"] + ["v%d" % i for i in range(1, int(ntags))]
    for t in tags:
        expect(c.request("PUT", "/v2/%s/manifests/%s" % (repo, t),
                         {"Content-Type": OCI_MANIFEST}, body=manifest), (201,), "PUT manifest")
    # sanity: every URL the load tests hit answers 200 with the right thing
    st, h, body = expect(c.request("GET", "/v2/%s/manifests/latest" % repo,
                                   {"Accept": OCI_MANIFEST}), (200,), "GET manifest")
    if body != manifest:
        raise HTTPError("manifest by tag differs from what was pushed")
    expect(c.request("HEAD", "/v2/%s/manifests/%s" % (repo, md),
                     {"Accept": OCI_MANIFEST}), (200,), "HEAD manifest")
    expect(c.request("HEAD", "/v2/%s/blobs/%s" % (repo, ld)), (200,), "HEAD blob")
    st, h, body = expect(c.request("GET", "/v2/%s/tags/list" % repo), (200,), "tags/list")
    got = sorted(json.loads(body)["tags"])
    if got != sorted(tags):
        raise HTTPError("tags/list: %r" % got)
    out({"manifest": md, "layer": ld, "config": cd, "tags": len(tags),
         "manifest_bytes": len(manifest)})


def cmd_token(url, user, password, scope):
    """GET /auth/token?service=fogport&scope=SCOPE with Basic credentials;
    checks the answer carries a token and prints it (untimed set-up; the
    timed cold login is curl's, in bench/run)."""
    c = Conn(url)
    basic = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    target = "/auth/token?" + urllib.parse.urlencode({"service": "fogport", "scope": scope})
    st, h, body = expect(c.request("GET", target, {"Authorization": "Basic " + basic}),
                         (200,), "GET token")
    tok = json.loads(body).get("token")
    if not tok or tok.count(".") != 2:
        raise HTTPError("token service answered without a JWT: %r" % body[:200])
    out({"token": tok, "expires_in": json.loads(body).get("expires_in")})


def run_wrk(args, env=None):
    """Run wrk with bench/wrk.lua; returns the WRK_RESULT fields."""
    e = dict(os.environ)
    e.update(env or {})
    lua = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrk.lua")
    r = subprocess.run(["wrk", "--timeout", "10s", "-s", lua] + args, env=e,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for ln in r.stdout.splitlines():
        if ln.startswith("WRK_RESULT "):
            return {k: float(v) for k, v in (x.split("=") for x in ln.split()[1:])}
    raise HTTPError("wrk: %s" % r.stdout.strip()[-300:])


def cmd_download(url, path, size, secs, pid):
    """One warm-up GET with the bytes checked (this client), then wrk -t1 -c1
    fetching the whole blob back to back for SECS seconds. wrk rather than
    this Python client for the timed part: a single stream on loopback is
    sensitive to the client's per-read cost and wake-ups, and wrk (C, epoll)
    gives steady numbers where a Python loop swings by 2x."""
    size, secs, pid = int(size), float(secs), int(pid)
    c = Conn(url)
    h = hashlib.sha256()
    st, hd, n = c.request("GET", path, discard=True, hasher=h)
    c.close()
    if st != 200 or n != size:
        raise HTTPError("download warm-up: HTTP %d, %d bytes" % (st, n))
    want = os.environ.get("BENCH_DIGEST")
    if want and "sha256:" + h.hexdigest() != want:
        raise HTTPError("download returned wrong bytes")
    s0 = cpu_seconds(pid)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    w = run_wrk(["-t1", "-c1", "-d%gs" % secs, url + path])
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    s1 = cpu_seconds(pid)
    errs = w["err_status"] + w["err_read"] + w["err_timeout"] + w["err_connect"]
    if errs:
        raise HTTPError("download: %d errors from wrk" % errs)
    dt = w["duration_us"] / 1e6
    total = w["bytes"]
    ccpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    out({"bytes": total, "seconds": dt, "mib_s": total / MiB / dt, "requests": w["requests"],
         "server_cpu_s": s1 - s0, "cpu_s_per_gib": (s1 - s0) / (total / GiB),
         "server_cpu_pct": 100.0 * (s1 - s0) / dt,
         "client_cpu_pct": 100.0 * ccpu / dt})


def http_ok(host, port, path):
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n"
                       % (path, host, port)).encode())
            data = b""
            while b"\r\n" not in data:
                b = s.recv(4096)
                if not b:
                    break
                data += b
            return data.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200"))
    except OSError:
        return False


def cmd_startup(url, logpath, argv):
    u = urllib.parse.urlsplit(url)
    with open(logpath, "ab") as lf:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=lf, stderr=lf)
        try:
            deadline = t0 + 30
            while True:
                if http_ok(u.hostname, u.port, u.path):
                    dt = time.perf_counter() - t0
                    break
                if p.poll() is not None:
                    raise SystemExit("server exited with %d during start-up" % p.returncode)
                if time.perf_counter() > deadline:
                    raise SystemExit("server not ready after 30 s")
                time.sleep(0.0005)
            rss = mem_kib(p.pid).get("VmRSS")
        finally:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    out({"seconds": dt, "rss_kib": rss})


# ---------------------------------------------------------------- report
def fmt(v, nd=1):
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    if abs(v) >= 1000:
        return "{:,.0f}".format(v)
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.*f" % (max(nd, 2), v)


def cmd_report(results, meta):
    R = {}
    with open(results) as f:
        for ln in f:
            ln = ln.rstrip("\n")
            if not ln:
                continue
            key, server, val = ln.split("\t")
            try:
                R[(key, server)] = float(val)
            except ValueError:
                R[(key, server)] = val
    M = {}
    if os.path.exists(meta):
        with open(meta) as f:
            for ln in f:
                k, _, v = ln.rstrip("\n").partition("\t")
                M[k] = v
    fp_state = M.get("fogport", "ok")

    def cell(key, server):
        v = R.get((key, server))
        if v is None and server == "fogport" and fp_state != "ok" and any(
                k == key for k, _ in R):
            return "pending", None
        if v is None:
            return "—", None
        if isinstance(v, str):
            return v, None
        errs = R.get((key + "_errors", server))
        s = "%.2f" % v if key.startswith("rss_") else fmt(v)
        if isinstance(errs, float) and errs > 0:
            s += " ⚠%d err" % errs
        return s, v

    # (label, key, unit, compare-against, target kind, target value)
    # compare-against: a server, "=KEY" (fogport's own KEY row: the auth rows
    # against the same fogport without auth) or None.
    # target kinds: ratio>= / ratio<= (fogport / other) or abs<= (fogport alone)
    rows = [
        ("Blob upload, monolithic POST+PUT", "up_mono", "MiB/s", "distribution", "ratio>=", 2),
        ("Blob upload, chunked (8 MiB PATCH)", "up_chunked", "MiB/s", "distribution", "ratio>=", 3),
        ("Blob download, 256 MiB", "dl_mibs", "MiB/s", "nginx", "ratio>=", 0.9),
        ("Blob download, server CPU", "dl_cpu", "CPU s/GiB", "nginx", "ratio<=", 1.3),
        ("Range GET 1 MiB, median", "range_p50", "ms", "nginx", "ratio<=", 1.5),
        ("Range GET 1 MiB, p99", "range_p99", "ms", "nginx", None, None),
        ("Manifest GET by tag", "mget_rps", "req/s", "distribution", "ratio>=", 10),
        ("Manifest GET by tag, p99", "mget_p99", "ms", "distribution", "abs<=", 15),
        ("Manifest HEAD by digest", "mhead_rps", "req/s", "distribution", "ratio>=", 10),
        ("Manifest HEAD by digest, p99", "mhead_p99", "ms", "distribution", "abs<=", 15),
        ("Blob HEAD", "bhead_rps", "req/s", "distribution", "ratio>=", 10),
        ("Blob HEAD, p99", "bhead_p99", "ms", "distribution", "abs<=", 15),
        ("tags/list", "tags_rps", "req/s", "distribution", "ratio>=", 10),
        ("tags/list, p99", "tags_p99", "ms", "distribution", "abs<=", 15),
        ("RSS idle after start", "rss_start", "MiB", "distribution", "abs<=", 4),
        ("RSS idle after the runs", "rss_end", "MiB", "distribution", "abs<=", 4),
        ("Peak RSS (VmHWM)", "rss_peak", "MiB", "distribution", "abs<=", 16),
        ("Start-up, exec to first 200 (median)", "startup", "ms", "distribution", None, None),
        ("Token issue, first login (bcrypt)", "tok_cold", "ms", None, None, None),
        ("Token issue, GET /auth/token (login cached)", "tok_rps", "req/s", None, None, None),
        ("Token issue, p99", "tok_p99", "ms", None, None, None),
        ("Manifest GET by tag, no auth", "amget_open_rps", "req/s", None, None, None),
        ("Manifest GET by tag, no auth, p99", "amget_open_p99", "ms", None, None, None),
        ("Manifest GET by tag, Bearer token", "amget_rps", "req/s", "=amget_open_rps", "ratio>=", 0.8),
        ("Manifest GET by tag, Bearer token, p99", "amget_p99", "ms", "=amget_open_p99", None, None),
    ]
    short = {"distribution": "Dist", "nginx": "nginx"}
    lines = []
    lines.append("| Measurement | Unit | fogport | Distribution 2.8 | nginx | fogport ratio | Target | Met |")
    lines.append("|---|---|--:|--:|--:|--:|---|:-:|")
    for label, key, unit, other, kind, tv in rows:
        if not any(k == key for k, _ in R):
            continue
        fs, fv = cell(key, "fogport")
        ds, dv = cell(key, "distribution")
        ns, nv = cell(key, "nginx")
        if other and other.startswith("="):
            ov, oname = cell(other[1:], "fogport")[1], "no auth"
        else:
            ov, oname = {"distribution": dv, "nginx": nv}.get(other), short.get(other)
        ratio, target, met = "—", "—", ""
        if fv is not None and ov:
            ratio = "%.2f× %s" % (fv / ov, oname)
        if kind == "ratio>=":
            target = "≥ %g× %s" % (tv, oname)
            if fv is not None and ov:
                met = "✅" if fv / ov >= tv else "❌"
        elif kind == "ratio<=":
            target = "≤ %g× %s" % (tv, oname)
            if fv is not None and ov:
                met = "✅" if fv / ov <= tv else "❌"
        elif kind == "abs<=":
            target = "≤ %g %s" % (tv, unit)
            if fv is not None:
                met = "✅" if fv <= tv else "❌"
        if fs == "pending" and kind:
            met = "pending"
        errs = R.get((key + "_errors", "fogport"))
        if isinstance(errs, float) and errs > 0 and met == "✅":
            met = "❌ (errors)"
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label, unit, fs, ds, ns, ratio, target, met))
    print("\n".join(lines))


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "gen":
        cmd_gen(*args)
    elif cmd == "push":
        cmd_push(*args)
    elif cmd == "upload":
        cmd_upload(args[0], args[1], args[2], args[3], args[4], args[5:])
    elif cmd == "setup-small":
        cmd_setup_small(*args)
    elif cmd == "token":
        cmd_token(*args)
    elif cmd == "download":
        cmd_download(*args)
    elif cmd == "startup":
        i = args.index("--")
        cmd_startup(args[0], args[1], args[i + 1:])
    elif cmd == "mem":
        out(mem_kib(int(args[0])))
    elif cmd == "cpu":
        out({"cpu_s": cpu_seconds(int(args[0]))})
    elif cmd == "monitor":
        cmd_monitor(*args)
    elif cmd == "foreign":
        cmd_foreign(*args)
    elif cmd == "report":
        cmd_report(*args)
    else:
        raise SystemExit("unknown subcommand %s" % cmd)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except (HTTPError, OSError) as e:
        print("fpbench: %s" % e, file=sys.stderr)
        sys.exit(1)
