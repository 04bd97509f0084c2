"""Small helpers for driving an OCI Distribution v1.1 registry over HTTP in the
end-to-end tests: digests, blob uploads, manifest builders, error-body checks
and raw-socket requests (for paths requests would normalise, and for clients
that misbehave on purpose)."""
import hashlib
import json
import os
import re
import socket
import time
import weakref
from urllib.parse import urlencode, urljoin, urlsplit

import requests

API_VERSION = "registry/2.0"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

ERROR_CODES = {
    "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID",
    "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED", "DENIED", "UNSUPPORTED",
    "TOOMANYREQUESTS",
}

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                     r"[0-9a-fA-F]{12}")
TIMEOUT = 10


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512(data):
    return "sha512:" + hashlib.sha512(data).hexdigest()


def rand_blob(n=None):
    return os.urandom(n if n is not None else 64 + int.from_bytes(os.urandom(2), "big") % 2000)


def jbytes(obj, pretty=True):
    """JSON bytes. Pretty by default, with an odd indent, so a registry that
    re-serialises manifests instead of storing the exact bytes is caught."""
    if pretty:
        return json.dumps(obj, indent=3).encode() + b"\n"
    return json.dumps(obj, separators=(",", ":")).encode()


def desc(media_type, data, **extra):
    d = {"mediaType": media_type, "digest": sha256(data), "size": len(data)}
    d.update(extra)
    return d


def with_query(url, params):
    """Append query parameters (a list of pairs or a dict) to a URL that may
    already carry a query (Distribution's _state, for example)."""
    q = urlencode(params)
    return url + ("&" if urlsplit(url).query else "?") + q


def path_of(url):
    """The path and query of a (possibly absolute) URL, for raw requests."""
    u = urlsplit(url)
    return u.path + (("?" + u.query) if u.query else "")


def header_values(resp, name):
    """All values of a (possibly repeated, possibly comma-joined) header."""
    try:
        raw = resp.raw.headers.getlist(name)
    except AttributeError:
        raw = [resp.headers[name]] if name in resp.headers else []
    out = []
    for v in raw:
        out += [p.strip() for p in v.split(",") if p.strip()]
    return out


class Client:
    """requests against one registry; paths are relative to its base URL."""

    def __init__(self, base):
        self.base = base.rstrip("/")
        self.s = requests.Session()
        # real clients always say which manifest types they take
        self.s.headers["Accept"] = ", ".join(
            [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST, "*/*"])

    def url(self, path_or_url):
        return urljoin(self.base + "/", path_or_url)

    def req(self, method, path, **kw):
        kw.setdefault("timeout", TIMEOUT)
        kw.setdefault("allow_redirects", False)
        r = self.s.request(method, self.url(path), **kw)
        # every 4xx JSON body anywhere in the tests must be an OCI error body
        if 400 <= r.status_code < 500 and method != "HEAD" and r.content[:1] == b"{":
            check_error_body(r)
        return r

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def head(self, path, **kw):
        return self.req("HEAD", path, **kw)

    def put(self, path, **kw):
        return self.req("PUT", path, **kw)

    def post(self, path, **kw):
        return self.req("POST", path, **kw)

    def patch(self, path, **kw):
        return self.req("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.req("DELETE", path, **kw)

    def location(self, resp):
        assert "Location" in resp.headers, f"no Location in {resp.status_code} {resp.headers}"
        return self.url(resp.headers["Location"])

    # -- blobs -------------------------------------------------------------

    def start_upload(self, repo, **params):
        r = self.post(f"/v2/{repo}/blobs/uploads/" + (("?" + urlencode(params)) if params else ""),
                      headers={"Content-Length": "0"})
        assert r.status_code == 202, (r.status_code, r.text)
        return self.location(r)

    def push_blob(self, repo, data, digest=None):
        """POST then PUT; returns the digest."""
        digest = digest or sha256(data)
        loc = self.start_upload(repo)
        r = self.put(with_query(loc, {"digest": digest}), data=data,
                     headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, (r.status_code, r.text)
        return digest

    def patch_chunk(self, loc, data, start):
        return self.patch(loc, data=data, headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{start}-{start + len(data) - 1}",
        })

    def blob_exists(self, repo, digest):
        r = self.head(f"/v2/{repo}/blobs/{digest}")
        assert r.status_code in (200, 404), r.status_code
        return r.status_code == 200

    # -- manifests ---------------------------------------------------------

    def put_manifest(self, repo, ref, body, media_type, params=None):
        path = f"/v2/{repo}/manifests/{ref}"
        if params:
            path += "?" + urlencode(params)
        return self.put(path, data=body, headers={"Content-Type": media_type})

    def push_manifest(self, repo, ref, body, media_type):
        r = self.put_manifest(repo, ref, body, media_type)
        assert r.status_code == 201, (r.status_code, r.text)
        return sha256(body)

    def push_image(self, repo, tag=None, layers=1, media_type=OCI_MANIFEST, annotations=None,
                   extra=None):
        """Upload a config and `layers` random layers, then the manifest (by tag
        or, with tag None, by digest). Returns (manifest bytes, digest)."""
        docker = media_type == DOCKER_MANIFEST
        cfg = jbytes({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": []},
                      "nonce": os.urandom(8).hex()}, pretty=False)
        self.push_blob(repo, cfg)
        layer_descs = []
        for _ in range(layers):
            data = rand_blob()
            self.push_blob(repo, data)
            layer_descs.append(desc(DOCKER_LAYER if docker else OCI_LAYER, data))
        m = {"schemaVersion": 2, "mediaType": media_type,
             "config": desc(DOCKER_CONFIG if docker else OCI_CONFIG, cfg),
             "layers": layer_descs}
        if annotations:
            m["annotations"] = annotations
        if extra:
            m.update(extra)
        body = jbytes(m)
        digest = self.push_manifest(repo, tag or sha256(body), body, media_type)
        return body, digest

    def tags(self, repo, **params):
        r = self.get(f"/v2/{repo}/tags/list" + (("?" + urlencode(params)) if params else ""))
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json().get("tags") or []


def image_manifest(config_bytes, layer_blobs, media_type=OCI_MANIFEST, **extra):
    docker = media_type == DOCKER_MANIFEST
    m = {"schemaVersion": 2, "mediaType": media_type,
         "config": desc(DOCKER_CONFIG if docker else OCI_CONFIG, config_bytes),
         "layers": [desc(DOCKER_LAYER if docker else OCI_LAYER, b) for b in layer_blobs]}
    m.update(extra)
    return jbytes(m)


def index_manifest(children, media_type=OCI_INDEX, **extra):
    """children: list of (manifest bytes, manifest media type)."""
    archs = ["amd64", "arm64", "ppc64le", "s390x", "riscv64"]
    m = {"schemaVersion": 2, "mediaType": media_type,
         "manifests": [dict(desc(mt, body), platform={"architecture": archs[i % 5], "os": "linux"})
                       for i, (body, mt) in enumerate(children)]}
    m.update(extra)
    return jbytes(m)


# -- error bodies -------------------------------------------------------------

def check_error_body(resp):
    """A 4xx JSON body must be {"errors":[{"code":..., "message":...}, ...]}.
    Returns the list of codes."""
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"{resp.request.method} {resp.url} -> {resp.status_code}: "
                             f"body is not JSON: {resp.content[:200]!r}")
    assert isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"], body
    codes = []
    for e in body["errors"]:
        assert isinstance(e, dict), body
        assert isinstance(e.get("code"), str) and re.fullmatch(r"[A-Z_]+", e["code"]), body
        assert isinstance(e.get("message"), str), f"error without message: {body}"
        codes.append(e["code"])
    return codes


def assert_error(resp, status, *codes):
    """resp has the given status (an int or a tuple of allowed ints) and, for a
    body-carrying method, an OCI error body containing one of codes."""
    allowed = status if isinstance(status, tuple) else (status,)
    assert resp.status_code in allowed, (
        f"{resp.request.method} {resp.url}: expected {allowed}, got {resp.status_code} "
        f"{resp.content[:300]!r}")
    if resp.request.method == "HEAD" or not codes:
        return
    got = check_error_body(resp)
    assert set(got) & set(codes), (
        f"{resp.request.method} {resp.url}: expected one of {codes}, got {got}")


def assert_api_header(resp):
    assert resp.headers.get("Docker-Distribution-API-Version") == API_VERSION, (
        f"{resp.request.method} {resp.url} -> {resp.status_code} lacks "
        f"Docker-Distribution-API-Version: {dict(resp.headers)}")


# -- raw HTTP -----------------------------------------------------------------

def raw_connect(host, timeout=TIMEOUT):
    h, p = host.rsplit(":", 1)
    s = socket.create_connection((h, int(p)), timeout=timeout)
    return s


_LEFTOVER = weakref.WeakKeyDictionary()  # bytes read past a response, per socket


def read_response(sock, timeout=TIMEOUT, head=False):
    """Read one HTTP/1.1 response (headers + Content-Length body). Returns
    (status, headers dict with lower-case names, body). Bytes that belong to
    a following (pipelined) response are kept for the next call."""
    sock.settimeout(timeout)
    buf = _LEFTOVER.pop(sock, b"")
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before response headers: {buf[:200]!r}")
        buf += chunk
    top, _, rest = buf.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = 0 if head else int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    if len(rest) > n:
        _LEFTOVER[sock] = rest[n:]
    return status, headers, rest[:n]


def raw_request(host, method, path, headers=None, body=b"", timeout=TIMEOUT):
    """Send a request with the path exactly as given (no normalisation)."""
    hdrs = {"Host": host, "Connection": "close", "Content-Length": str(len(body))}
    hdrs.update(headers or {})
    req = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    with raw_connect(host, timeout) as s:
        s.sendall(req.encode("latin-1") + b"\r\n" + body)
        return read_response(s, timeout, head=(method == "HEAD"))


def wait_until(pred, timeout=5.0, interval=0.05):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v or time.time() > deadline:
            return v
        time.sleep(interval)
