"""Helpers for the federation end-to-end tests: a `fogport sandbox` deployment
driven from Python (its nodes, their logs and processes, admin tokens from the
cloud's token service, skopeo against TLS + token auth), raw pushes of large
images over the registry API, config edits for restarted nodes, and a fake
HTTPS peer that serves wrong bytes (or right ones, slowly)."""
import gzip
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import threading
import time

import requests

from conftest import FOGPORT

ENV = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "detect_leaks=0"))

from helpers import (ACCEPT_ALL as ACCEPT, OCI_CONFIG, OCI_LAYER,  # noqa: F401 (re-exported)
                     OCI_MANIFEST, sha256)


def fogport(*args, check=True, timeout=60, env=None):
    r = subprocess.run([FOGPORT, *[str(a) for a in args]], capture_output=True, text=True,
                       env=env or ENV, timeout=timeout)
    if check:
        assert r.returncode == 0, f"fogport {' '.join(map(str, args))} -> {r.returncode}\n" \
                                  f"{r.stdout}\n{r.stderr}"
    return r


def cli(sb, *args, check=True, timeout=60):
    """`fogport *args` in sb.env (by default the sandbox admin's client
    context); the CompletedProcess, exit 0 unless check=False."""
    return fogport(*args, check=check, timeout=timeout, env=sb.env)


def cli_json(sb, *args):
    """`fogport *args --json` in sb.env, its output parsed."""
    return json.loads(cli(sb, *args, "--json").stdout)


def instances(sb, service):
    """service's instances as the cloud knows them (`fogport ps`)."""
    return [i for i in cli_json(sb, "ps") if i["service"] == service]


def running_on(sb, service):
    """Nodes whose instance of service runs, as the cloud knows it."""
    return sorted(i["node"] for i in instances(sb, service) if i["state"] == "running")


def pid_alive(pid):
    """Is pid a running (not zombie) process?"""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def wait_for(pred, timeout=10.0, interval=0.1):
    """pred() until it returns something true or timeout; its last value."""
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v or time.time() >= deadline:
            return v
        time.sleep(interval)


class CaSession(requests.Session):
    """A session that verifies with the sandbox CA on every request
    (REQUESTS_CA_BUNDLE in the environment would override Session.verify)."""

    def __init__(self, ca):
        super().__init__()
        self.ca = ca

    def request(self, method, url, **kw):
        kw.setdefault("verify", self.ca)
        return super().request(method, url, **kw)


# ---------------------------------------------------------------- nodes

class Node:
    """One node of a sandbox: its URL, files, log and process. The process is
    the sandbox's (pid from topology.json) until the test restarts it."""

    def __init__(self, sb, entry):
        self.sb = sb
        self.id = entry["id"]
        self.role = entry["role"]
        self.parent = entry.get("parent")
        self.url = entry["registry"]
        self.host = self.url.split("://", 1)[1]
        self.dir = entry["data"]
        self.data_dir = os.path.join(self.dir, "data")
        self.config = entry["config"]
        self.log_path = os.path.join(self.dir, "serve.log")
        self.pid = entry["pid"]
        self.binary = entry.get("binary", FOGPORT)  # sandbox up --edge-binary: edges run another
        self.address = entry.get("address")
        self.netns = entry.get("netns")  # sandbox up --netns: the node's own namespace
        self.proc = None  # a process this test started

    # -- log ----------------------------------------------------------------

    def log(self, since=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def mark(self):
        """The log's current size: log(since=mark) is what came after."""
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def lines(self, pattern, since=0):
        rx = re.compile(pattern)
        return [l for l in self.log(since).splitlines() if rx.search(l)]

    def wait_log(self, pattern, since=0, timeout=10.0, count=1):
        """The matching log lines once there are at least count of them; fails
        with the log's tail after timeout."""
        got = wait_for(lambda: (lambda ls: ls if len(ls) >= count else None)(
            self.lines(pattern, since)), timeout)
        assert got, f"{self.id}: no log line /{pattern}/ within {timeout}s; log since mark:\n" \
                    f"{self.log(since)[-4000:]}"
        return got

    # -- process -------------------------------------------------------------

    def alive(self):
        if self.proc is not None:
            return self.proc.poll() is None
        return pid_alive(self.pid)

    def send(self, sig):
        if self.proc is not None:
            self.proc.send_signal(sig)
        else:
            os.kill(self.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stop the node (the sandbox's process or ours); returns our
        process's exit status, or None for the sandbox's."""
        if self.proc is not None:
            p, self.proc = self.proc, None
            if p.poll() is None:
                p.send_signal(sig)
                try:
                    p.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            return p.returncode
        if pid_alive(self.pid):
            os.kill(self.pid, sig)
            if not wait_for(lambda: not pid_alive(self.pid), timeout, 0.05):
                os.kill(self.pid, signal.SIGKILL)
                wait_for(lambda: not pid_alive(self.pid), 5, 0.05)
        return None

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def start(self, timeout=20):
        """`fogport serve --config <its config>`, logging to its serve.log,
        answering over HTTPS."""
        assert self.proc is None and not pid_alive(self.pid), f"{self.id} is running"
        # the network namespace only, as `sandbox up` does (setns): `ip netns
        # exec` would also give it a mount namespace with a fresh /sys, where
        # an agent's runtime finds no cgroup mounts
        inside = ["nsenter", f"--net=/run/netns/{self.netns}"] if self.netns else []
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([*inside, self.binary, "serve", "--config", self.config],
                                         stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         env=ENV)
        self.pid = self.proc.pid
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise AssertionError(f"{self.id} exited {rc} on start:\n{self.log()[-3000:]}")
            try:
                requests.get(self.url + "/v2/", verify=self.sb.ca, timeout=1)
                return self
            except requests.RequestException as e:
                last = e
                time.sleep(0.05)
        raise AssertionError(f"{self.id} did not answer: {last}\n{self.log()[-3000:]}")

    def set_federation(self, **keys):
        """Set keys in the [federation] section of the node's config."""
        self.set_config("federation", **keys)

    def set_config(self, section, **keys):
        """Set keys in a section of the node's config (the sandbox writes
        some sections; a second one of the same name would be a duplicate)."""
        with open(self.config) as f:
            lines = f.read().splitlines()
        current = None
        out, placed = [], set()
        for line in lines:
            m = re.match(r"\s*\[([^\]]+)\]\s*$", line)
            if m:
                if current == section:
                    out += [f"{k} = {v}" for k, v in keys.items() if k not in placed]
                    placed.update(keys)
                current = m.group(1).strip()
            elif current == section:
                k = line.split("=", 1)[0].strip()
                if k in keys:
                    continue  # replaced below
            out.append(line)
        if current == section:
            out += [f"{k} = {v}" for k, v in keys.items() if k not in placed]
            placed.update(keys)
        if set(keys) - placed:
            out.append(f"[{section}]")
            out += [f"{k} = {v}" for k, v in keys.items()]
        with open(self.config, "w") as f:
            f.write("\n".join(out) + "\n")

    def fsck(self):
        return fogport("fsck", "--data", self.data_dir, check=False, timeout=120)


class Sandbox:
    """`fogport sandbox up --dir D --fogs N --edges M`, read back from
    D/topology.json; down() stops it and whatever the test restarted."""

    # The sandbox replicates every registered service to every fog unless
    # DIR/replication already holds rules: these tests are about pulling
    # through, so by default nothing is pushed to a fog before it is asked.
    NO_REPLICATION = "# federation tests: no replication rules (pull-through only)\n"

    def __init__(self, base, fogs=3, edges=1, replication=NO_REPLICATION, args=()):
        self.dir = str(base)
        self.fogs, self.edges = fogs, edges
        self.args = list(args)  # more `sandbox up` options (--netns ...)
        self.replication = replication
        self.nodes = {}

    def up(self):
        if self.replication is not None:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            with open(os.path.join(self.dir, "replication"), "w") as f:
                f.write(self.replication)
        fogport("sandbox", "up", "--dir", self.dir, "--fogs", self.fogs, "--edges", self.edges,
                *self.args)
        with open(os.path.join(self.dir, "topology.json")) as f:
            self.topo = json.load(f)
        self.ca = self.topo["ca"]
        self.admin = (self.topo["admin"]["user"], self.topo["admin"]["password"])
        self.nodes = {e["id"]: Node(self, e) for e in self.topo["nodes"]}
        self.cloud = self.nodes["cloud"]
        # skopeo reads every *.crt / *.key of a cert dir: only the CA in it
        self.certs = os.path.join(self.dir, "certs")
        os.makedirs(self.certs, exist_ok=True)
        shutil.copy(self.ca, os.path.join(self.certs, "ca.crt"))
        self.client_json = os.path.join(self.dir, "client.json")
        # the admin's client context, for cli() (a test may set its own)
        self.env = dict(ENV, FOGPORT_CONFIG=self.client_json)
        return self

    def __getitem__(self, node_id):
        return self.nodes[node_id]

    def fogs_list(self):
        return [n for n in self.nodes.values() if n.role == "fog"]

    def down(self):
        for n in self.nodes.values():
            try:
                os.kill(n.pid, signal.SIGCONT)  # a test may have left it stopped
            except (ProcessLookupError, PermissionError):
                pass
            if n.proc is not None:
                n.stop()
        return fogport("sandbox", "down", "--dir", self.dir, check=False)

    # -- tokens and requests --------------------------------------------------

    def token(self, service, repo=None, actions="pull", auth=None):
        """A Bearer token from the cloud's token service for service (a node
        id, or "fogport" for the cloud)."""
        params = {"service": service}
        if repo:
            params["scope"] = f"repository:{repo}:{actions}"
        r = requests.get(self.cloud.url + "/auth/token", params=params, auth=auth or self.admin,
                         verify=self.ca, timeout=10)
        assert r.status_code == 200, f"token {params}: {r.status_code} {r.text}"
        return r.json()["token"]

    def service_of(self, node):
        return "fogport" if node.role == "cloud" else node.id

    def session(self, node, repo, actions="pull"):
        s = CaSession(self.ca)
        s.headers["Authorization"] = "Bearer " + self.token(self.service_of(node), repo, actions)
        s.headers["Accept"] = ACCEPT
        return s

    def nodes_cli(self, *args):
        return fogport("nodes", *args, env=self.env)

    def directory(self):
        r = requests.get(self.cloud.url + "/api/v1/nodes", auth=self.admin, verify=self.ca,
                         timeout=10)
        assert r.status_code == 200, (r.status_code, r.text)
        return {n["id"]: n for n in r.json()["nodes"]}

    # -- skopeo ------------------------------------------------------------------

    def creds(self):
        return "%s:%s" % self.admin

    def skopeo(self, *args, check=True, timeout=120):
        r = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True,
                           text=True, timeout=timeout)
        if check:
            assert r.returncode == 0, f"skopeo {' '.join(args)} -> {r.returncode}\n{r.stderr}"
        return r

    def push(self, layout, ref, node, dest=None):
        """skopeo copy layout:ref to node as dest (default ref)."""
        self.skopeo("copy", "--quiet", "--dest-cert-dir", self.certs, "--dest-creds",
                    self.creds(), layout.ref(ref), f"docker://{node.host}/{dest or ref}")

    def raw_manifest(self, node, ref):
        """skopeo inspect --raw: the manifest bytes the node serves for ref."""
        r = subprocess.run(["skopeo", "--insecure-policy", "inspect", "--raw", "--cert-dir",
                            self.certs, "--creds", self.creds(), f"docker://{node.host}/{ref}"],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, f"skopeo inspect {node.id} {ref}: {r.stderr.decode()}"
        return r.stdout

    def pull(self, node, ref, out_dir, *extra, check=True):
        """skopeo copy docker://node/ref to a fresh OCI layout in out_dir;
        returns the digest of the manifest that arrived (None on failure
        when check is false)."""
        assert not os.path.exists(out_dir), out_dir  # skopeo skips blobs a layout holds
        digestfile = out_dir + ".digest"
        args = ["copy", "--quiet", "--src-cert-dir", self.certs, "--src-creds", self.creds(),
                "--digestfile", digestfile, *extra, f"docker://{node.host}/{ref}",
                f"oci:{out_dir}:pulled"]
        r = self.skopeo(*args, check=False)
        if r.returncode != 0:
            time.sleep(0.2)  # let the node log the request
            cut = node.lines(r"aborted=true|event=(fetch|pull)_\w+")
            assert not check, (
                f"skopeo {' '.join(args)} -> {r.returncode}\n{r.stderr}\n"
                f"{node.id}'s cut responses and failed fetches:\n" + "\n".join(cut[-10:]))
            return None
        with open(digestfile) as f:
            return f.read().strip()


SANITIZER = re.compile(r"AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:|LeakSanitizer")


def check_log_clean(sb):
    """No node logged a sanitizer report."""
    for n in sb.nodes.values():
        m = SANITIZER.search(n.log())
        assert not m, f"{n.id}: sanitizer report:\n{n.log()[m.start():][:3000]}"


def layout_blobs_ok(out_dir):
    """Every blob of an OCI layout hashes to its name; the number of blobs."""
    n = 0
    base = os.path.join(out_dir, "blobs", "sha256")
    for name in os.listdir(base):
        h = hashlib.sha256()
        with open(os.path.join(base, name), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        assert h.hexdigest() == name, f"{out_dir}: blob {name} hashes to {h.hexdigest()}"
        n += 1
    return n


# ---------------------------------------------------------------- raw pushes

def push_blob(s, node, repo, data):
    digest = sha256(data)
    r = s.post(f"{node.url}/v2/{repo}/blobs/uploads/", params={"digest": digest}, data=data,
               headers={"Content-Type": "application/octet-stream"}, timeout=120)
    assert r.status_code == 201, f"push blob to {node.id}/{repo}: {r.status_code} {r.text[:300]}"
    return digest


def gz_layer(n):
    """A layer of n random bytes, gzip-compressed (clients such as skopeo
    re-write a manifest whose "tar+gzip" layers are not gzip)."""
    return gzip.compress(os.urandom(n), compresslevel=1)


def push_image(s, node, repo, tag, layers, label="fedtest"):
    """Push a config, the given layer bytes and an OCI manifest tagged tag.
    Returns (manifest digest, manifest bytes, config bytes)."""
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Labels": {"test": label, "nonce": os.urandom(8).hex()}},
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    push_blob(s, node, repo, config)
    for b in layers:
        push_blob(s, node, repo, b)
    m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
         "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
         "layers": [{"mediaType": OCI_LAYER, "digest": sha256(b), "size": len(b)}
                    for b in layers]}
    body = json.dumps(m, indent=3).encode()
    r = s.put(f"{node.url}/v2/{repo}/manifests/{tag}", data=body,
              headers={"Content-Type": OCI_MANIFEST}, timeout=30)
    assert r.status_code == 201, f"push manifest to {node.id}/{repo}:{tag}: {r.status_code} " \
                                 f"{r.text[:300]}"
    return sha256(body), body, config


# ---------------------------------------------------------------- a lying peer

class EvilPeer:
    """An HTTPS registry that claims to hold some blobs: HEAD answers with the
    right size, GET with as many wrong bytes. Everything else is unknown.
    Its certificate comes from the sandbox CA, so a fog trusts the
    connection; only the digest check can catch it.

    The wrong bytes go out as one chunk of a chunked body whose end comes
    `hold` seconds later: the fog has every byte long before it can verify
    them, so what it does with its own clients meanwhile is visible.

    A slow peer: `content` maps request paths to (content type, bytes) it
    serves rightly, and `delay` seconds pass between accepting a request for
    a repository's content and answering it."""

    def __init__(self, sb, blobs, hold=0.8, realm=None, delay=0, content=None):
        self.blobs = dict(blobs)  # digest -> size
        self.hold = hold
        self.realm = realm        # set: challenge every request to get a token there
        self.delay = delay
        self.content = dict(content or {})  # path -> (content type, bytes)
        self.requests = []        # (method, path, headers dict)
        prefix = os.path.join(sb.dir, "evil-tls")
        fogport("cert", "issue", "--ca", os.path.join(sb.dir, "ca"), "--name", "evil",
                "--ip", "127.0.0.1", "--out", prefix)
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self, body):
                peer.requests.append((self.command, self.path, dict(self.headers)))
                path = self.path.split("?", 1)[0]
                m = re.fullmatch(r"/v2/(.+)/(blobs|manifests)/(sha256:[0-9a-f]{64})", path)
                if peer.delay and path != "/v2/":
                    time.sleep(peer.delay)
                if peer.realm and path != "/v2/" and "Authorization" not in self.headers:
                    status, data = 401, b'{"errors":[{"code":"UNAUTHORIZED","message":"x"}]}'
                    hdrs = {"Content-Type": "application/json", "WWW-Authenticate":
                            f'Bearer realm="{peer.realm}",service="evil"'}
                elif path == "/v2/":
                    status, data, hdrs = 200, b"{}", {"Content-Type": "application/json"}
                elif path in peer.content:
                    ctype, data = peer.content[path]
                    status = 200
                    hdrs = {"Content-Type": ctype, "Docker-Content-Digest": sha256(data)}
                elif m and m.group(3) in peer.blobs:
                    size = peer.blobs[m.group(3)]
                    # the same length, every byte wrong
                    status, data = 200, bytes([0x5A]) * size
                    hdrs = {"Content-Type": "application/octet-stream",
                            "Docker-Content-Digest": m.group(3)}
                else:
                    status = 404
                    data = b'{"errors":[{"code":"BLOB_UNKNOWN","message":"unknown"}]}'
                    hdrs = {"Content-Type": "application/json"}
                chunked = (body and status == 200 and path != "/v2/" and peer.hold and
                           path not in peer.content)
                self.send_response(status)
                for k, v in hdrs.items():
                    self.send_header(k, v)
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if not body:
                    return
                try:
                    if chunked:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        self.wfile.flush()
                        time.sleep(peer.hold)
                        self.wfile.write(b"0\r\n\r\n")
                    else:
                        self.wfile.write(data)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass

            def do_GET(self):
                self.answer(True)

            def do_HEAD(self):
                self.answer(False)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.name = prefix
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(prefix + ".crt", prefix + ".key")
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def asked(self, method, digest):
        return [r for r in self.requests if r[0] == method and r[1].endswith("/" + digest)]
