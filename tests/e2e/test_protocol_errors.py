"""OCI Distribution protocol edge cases of `fogport serve`: repository name
validation, the error body format, and robustness against slow, many and
broken clients."""
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from ocihelp import (
    OCI_MANIFEST, Client, assert_api_header, assert_error, check_error_body, path_of, rand_blob,
    raw_connect, raw_request, read_response, sha256, wait_until, with_query,
)

OCTET = {"Content-Type": "application/octet-stream"}
UUID_RE_SAMPLE = "0b7f3f2c-8f0e-4b8e-9d2c-5a1e3c9d7f11"


@pytest.fixture
def c(registry):
    return Client(registry.url)


def catalog(c):
    r = c.get("/v2/_catalog")
    assert r.status_code == 200
    return r.json().get("repositories") or []


# ---------------------------------------------------------------------------
# repository names

# routable paths whose name is invalid: must be 400 NAME_INVALID
INVALID_ROUTABLE = ["UPPER", "Team/app", "a..b", "-lead", "trail-", "a/-b", "a/b_", "a___b",
                    "a.-b", "x" * 256, "/".join(["abcdefghi"] * 26)]
# paths that may not even route: 400 NAME_INVALID or 404
INVALID_ANY = ["a//b", "a/../b", "../a", "a/./b", "a/", "%2e%2e/a", "a/%2e%2e/b", "a b"]


@pytest.mark.parametrize("name", INVALID_ROUTABLE)
def test_invalid_name_routable(c, name):
    data = b"payload"
    d = sha256(data)
    for method, path, body, hdrs in [
        ("POST", f"/v2/{name}/blobs/uploads/", b"", {}),
        ("POST", f"/v2/{name}/blobs/uploads/?digest={d}", data, OCTET),
        ("PUT", f"/v2/{name}/manifests/latest", b"{}", {"Content-Type": OCI_MANIFEST}),
        ("GET", f"/v2/{name}/tags/list", b"", {}),
        ("GET", f"/v2/{name}/manifests/latest", b"", {}),
        ("GET", f"/v2/{name}/blobs/{d}", b"", {}),
        ("GET", f"/v2/{name}/referrers/{d}", b"", {}),
    ]:
        r = c.req(method, path, data=body, headers=hdrs)
        assert_error(r, 400, "NAME_INVALID")
    assert catalog(c) == []


@pytest.mark.parametrize("name", INVALID_ANY)
def test_invalid_name_unroutable(registry, c, name):
    data = b"payload"
    d = sha256(data)
    for method, path, body in [
        ("POST", f"/v2/{name}/blobs/uploads/", b""),
        ("POST", f"/v2/{name}/blobs/uploads/?digest={d}", data),
        ("PUT", f"/v2/{name}/manifests/latest", b"{}"),
        ("GET", f"/v2/{name}/tags/list", b""),
    ]:
        st, hdrs, out = raw_request(registry.host, method, path.replace(" ", "%20"), body=body,
                                    headers={"Content-Type": "application/octet-stream"})
        assert st in (400, 404), (method, path, st, out[:200])
        if st == 400 and out[:1] == b"{":
            codes = [e["code"] for e in json.loads(out)["errors"]]
            assert "NAME_INVALID" in codes, (method, path, codes)
    assert catalog(c) == []
    assert c.get("/v2/").status_code == 200


def test_name_length_limit(c):
    ok = "/".join(["abcdefghi"] * 25) + "/abcde"  # 255 characters
    assert len(ok) == 255
    body, d = c.push_image(ok, tag="v1")
    assert c.get(f"/v2/{ok}/manifests/v1").content == body
    bad = ok + "x"
    assert_error(c.post(f"/v2/{bad}/blobs/uploads/"), 400, "NAME_INVALID")
    assert catalog(c) == [ok]


# ---------------------------------------------------------------------------
# error body format


def test_error_bodies(c):
    """Every 4xx answer with a body carries {"errors":[{"code","message"}]}
    and the code the spec names for it."""
    body, d = c.push_image("errs", tag="v1")
    loc = c.start_upload("errs")
    cases = [
        (c.get(f"/v2/errs/blobs/{sha256(b'x')}"), 404, "BLOB_UNKNOWN"),
        (c.get("/v2/errs/blobs/uploads/3f1e5c1a-0d3b-4c55-9a7e-2f0c4b1d9e88"), 404,
         "BLOB_UPLOAD_UNKNOWN"),
        (c.put(with_query(loc, {"digest": sha256(b"y")}), data=b"x", headers=OCTET), 400,
         "DIGEST_INVALID"),
        (c.get("/v2/errs/manifests/nope"), 404, "MANIFEST_UNKNOWN"),
        (c.put("/v2/errs/manifests/x", data=b"{", headers={"Content-Type": OCI_MANIFEST}), 400,
         "MANIFEST_INVALID"),
        (c.get("/v2/nobody/tags/list"), 404, "NAME_UNKNOWN"),
        (c.get("/v2/BAD/tags/list"), 400, "NAME_INVALID"),
        (c.delete(f"/v2/errs/manifests/{sha256(b'z')}"), 404, "MANIFEST_UNKNOWN"),
        (c.delete(f"/v2/errs/blobs/{sha256(b'z')}"), 404, "BLOB_UNKNOWN"),
    ]
    for r, status, code in cases:
        assert_error(r, status, code)
        assert_api_header(r)
        assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    # all 4xx responses of other kinds that carry a JSON body are well formed
    blob = c.push_blob("errs", b"0123456789")
    r = c.get(f"/v2/errs/blobs/{blob}", headers={"Range": "bytes=99999-"})
    assert r.status_code == 416
    if r.status_code == 416 and r.content[:1] == b"{":
        check_error_body(r)


def test_unknown_endpoint_is_404(c):
    for path in ("/v2/foo", "/v2/foo/bar/baz", "/v1/", "/v2/x/blobs/", "/v2x"):
        r = c.get(path)
        assert r.status_code == 404, (path, r.status_code)
        if r.content[:1] == b"{":
            check_error_body(r)


def test_method_not_allowed(c):
    c.push_image("meth", tag="v1")
    for method, path in [("POST", "/v2/meth/manifests/v1"), ("PATCH", "/v2/meth/tags/list"),
                         ("PUT", "/v2/meth/blobs/" + sha256(b"q"))]:
        r = c.req(method, path)
        assert r.status_code in (404, 405), (method, path, r.status_code)
        if r.content[:1] == b"{":
            check_error_body(r)
    assert c.get("/v2/meth/manifests/v1").status_code == 200


def test_put_upload_without_digest(c):
    loc = c.start_upload("nodig")
    r = c.put(loc, data=b"abc", headers=OCTET)
    assert_error(r, 400, "DIGEST_INVALID", "BLOB_UPLOAD_INVALID")
    assert not c.blob_exists("nodig", sha256(b"abc"))


def test_blob_unsupported_digest_path(c):
    c.push_blob("dpath", b"x")
    r = c.get("/v2/dpath/blobs/sha256:notgood")
    assert r.status_code in (400, 404), r.status_code
    if r.status_code == 400:
        assert_error(r, 400, "DIGEST_INVALID")


# ---------------------------------------------------------------------------
# robustness


def test_stalled_client_does_not_block_others(registry, c):
    """Half a request (headers unfinished, or a body that never comes) holds
    no lock that stops other clients, not even on the same repository or
    upload session."""
    stalled = []

    def stall(raw):
        s = raw_connect(registry.host)
        s.sendall(raw)
        stalled.append(s)

    try:
        for _ in range(100):
            stall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        stall(b"POST /v2/slow/blobs/uploads/?digest=" + sha256(b"x" * 1000).encode() +
              b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
              b"Content-Length: 1000\r\n\r\n" + b"x" * 10)
        loc = c.start_upload("slow")
        loc = c.location(c.patch_chunk(loc, b"y" * 100, 0))
        stall(f"PATCH {path_of(loc)} HTTP/1.1\r\nHost: x\r\n"
              f"Content-Type: application/octet-stream\r\n"
              f"Content-Range: 100-199\r\nContent-Length: 100\r\n\r\n".encode() + b"y" * 5)
        stall(f"PUT /v2/other/manifests/v0 HTTP/1.1\r\nHost: x\r\n"
              f"Content-Type: {OCI_MANIFEST}\r\nContent-Length: 5000\r\n\r\n{{".encode())
        time.sleep(0.3)
        t0 = time.time()
        quick = Client(registry.url)
        assert quick.get("/v2/", timeout=3).status_code == 200
        body, d = quick.push_image("other", tag="v1")  # same repository as the stalled PUT
        r = quick.get("/v2/other/manifests/v1", timeout=3)
        assert r.status_code == 200 and r.content == body
        assert quick.get("/v2/_catalog", timeout=3).status_code == 200
        # the session with a stalled PATCH answers its status promptly
        s = quick.get(loc, timeout=3)
        assert s.status_code in (204, 404, 409, 416, 423), s.status_code
        if s.status_code == 204:
            assert s.headers.get("Range") == "0-99"
        assert time.time() - t0 < 5
    finally:
        for s in stalled:
            s.close()


def test_200_concurrent_connections(registry, c):
    data = rand_blob(5000)
    d = c.push_blob("conc", data)
    socks = []
    try:
        for _ in range(200):
            socks.append(raw_connect(registry.host))
        # all 200 are open at once; now each asks for the blob
        req = (f"GET /v2/conc/blobs/{d} HTTP/1.1\r\nHost: {registry.host}\r\n\r\n").encode()
        for s in socks:
            s.sendall(req)
        for s in socks:
            st, hdrs, body = read_response(s, timeout=20)
            assert st == 200 and body == data
    finally:
        for s in socks:
            s.close()

    # and 200 clients in parallel, each with its own connection
    def one(i):
        with requests.Session() as s:
            r = s.head(f"{registry.url}/v2/conc/blobs/{d}", timeout=20)
            return r.status_code

    with ThreadPoolExecutor(max_workers=200) as ex:
        codes = list(ex.map(one, range(200)))
    assert codes == [200] * 200


def test_dropped_patch_keeps_previous_offset(registry, c):
    data = rand_blob(300)
    d = sha256(data)
    loc = c.location(c.patch_chunk(c.start_upload("drop"), data[:100], 0))
    path = path_of(loc)
    s = raw_connect(registry.host)
    s.sendall(f"PATCH {path} HTTP/1.1\r\nHost: {registry.host}\r\n"
              f"Content-Type: application/octet-stream\r\nContent-Range: 100-199\r\n"
              f"Content-Length: 100\r\n\r\n".encode() + data[100:140])
    time.sleep(0.2)
    s.close()

    seen = []

    def status_ok():
        r = c.get(loc)
        seen.append((r.status_code, r.headers.get("Range")))
        return r.status_code == 204 and r.headers.get("Range") == "0-99"

    assert wait_until(status_ok, timeout=5), f"upload status after dropped PATCH: {seen[-3:]}"
    # the session is still usable from the old offset
    r = c.patch_chunk(loc, data[100:200], 100)
    assert r.status_code == 202, r.text
    assert r.headers.get("Range") == "0-199"
    r = c.put(with_query(c.location(r), {"digest": d}), data=data[200:],
              headers={"Content-Type": "application/octet-stream", "Content-Range": "200-299"})
    assert r.status_code == 201, r.text
    assert c.get(f"/v2/drop/blobs/{d}").content == data


def test_dropped_monolithic_upload_stores_nothing(registry, c):
    data = rand_blob(1000)
    d = sha256(data)
    s = raw_connect(registry.host)
    s.sendall(f"POST /v2/dropmono/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: {registry.host}\r\n"
              f"Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n".encode()
              + data[:300])
    time.sleep(0.2)
    s.close()
    time.sleep(0.2)
    assert not c.blob_exists("dropmono", d)
    assert c.get("/v2/").status_code == 200
    # the same blob can then be pushed normally
    r = c.post(f"/v2/dropmono/blobs/uploads/?digest={d}", data=data, headers=OCTET)
    assert r.status_code == 201
    assert c.get(f"/v2/dropmono/blobs/{d}").content == data


def test_concurrent_uploads_of_same_blob(registry, c):
    data = rand_blob(200_000)
    d = sha256(data)

    def push(i):
        cl = Client(registry.url)
        loc = cl.start_upload(f"race{i % 3}")
        r = cl.put(with_query(loc, {"digest": d}), data=data, headers=OCTET)
        return r.status_code

    with ThreadPoolExecutor(max_workers=12) as ex:
        codes = list(ex.map(push, range(12)))
    assert codes == [201] * 12
    for i in range(3):
        g = c.get(f"/v2/race{i}/blobs/{d}")
        assert g.status_code == 200 and g.content == data


def test_garbage_request_does_not_kill_server(registry, c):
    for junk in (b"\x00\x01\x02garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"GET /v2/ HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                 b"PATCH /v2/x/blobs/uploads/zzz HTTP/1.1\r\nHost: x\r\nContent-Range: 9-1\r\n"
                 b"Content-Length: 0\r\n\r\n"):
        s = raw_connect(registry.host)
        try:
            s.sendall(junk)
            s.settimeout(3)
            try:
                s.recv(4096)
            except (socket.timeout, ConnectionError):
                pass
        finally:
            s.close()
    assert c.get("/v2/").status_code == 200
    assert registry.proc.poll() is None


def test_keepalive_reuse(registry, c):
    """Several requests on one connection, bodies included."""
    data = rand_blob(500)
    d = sha256(data)
    s = raw_connect(registry.host)
    try:
        s.sendall(b"POST /v2/ka/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        st, h, _ = read_response(s)
        assert st == 202
        loc = path_of(h["location"])
        s.sendall(f"PUT {with_query(loc, {'digest': d})} HTTP/1.1\r\nHost: x\r\n"
                  f"Content-Type: application/octet-stream\r\nContent-Length: 500\r\n\r\n".encode()
                  + data)
        st, h, _ = read_response(s)
        assert st == 201
        s.sendall(f"HEAD /v2/ka/blobs/{d} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        st, h, _ = read_response(s, head=True)
        assert st == 200 and h.get("content-length") == "500"
        s.sendall(f"GET /v2/ka/blobs/{d} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        st, h, body = read_response(s)
        assert st == 200 and body == data
        # two requests in one write (pipelined)
        s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/ka/blobs/" + d.encode() +
                  b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(s)[0] == 200
        st, h, body = read_response(s)
        assert st == 200 and body == data
    finally:
        s.close()


def test_same_chunk_raced_on_one_session(registry, c):
    """Two clients PATCH the same first chunk at once: one wins, the other is
    refused, and the upload holds the chunk once."""
    data = rand_blob(64 * 1024)
    loc = c.start_upload("racechunk")

    def patch(_):
        return Client(registry.url).patch_chunk(loc, data, 0).status_code

    for _ in range(3):
        with ThreadPoolExecutor(max_workers=2) as ex:
            codes = sorted(ex.map(patch, range(2)))
        s = c.get(loc)
        assert s.status_code == 204 and s.headers.get("Range") == f"0-{len(data) - 1}", (
            codes, s.status_code, s.headers.get("Range"))
        assert codes[0] == 202 and 400 <= codes[1] < 500, codes
        r = c.put(with_query(loc, {"digest": sha256(data)}))
        assert r.status_code == 201, r.text
        assert c.get(f"/v2/racechunk/blobs/{sha256(data)}").content == data
        loc = c.start_upload("racechunk")
        data = rand_blob(64 * 1024)


def test_expect_100_continue(registry, c):
    """curl-style uploads send Expect: 100-continue and wait for it."""
    data = rand_blob(3000)
    d = sha256(data)
    loc = c.start_upload("expect")
    s = raw_connect(registry.host)
    try:
        s.sendall(f"PUT {path_of(with_query(loc, {'digest': d}))} HTTP/1.1\r\nHost: x\r\n"
                  f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n"
                  f"Expect: 100-continue\r\n\r\n".encode())
        s.settimeout(5)
        first = s.recv(4096)
        assert first.startswith(b"HTTP/1.1 100"), first[:100]
        rest = first.split(b"\r\n\r\n", 1)[1]
        assert rest == b"", rest[:100]
        s.sendall(data)
        st, h, _ = read_response(s)
        assert st == 201
    finally:
        s.close()
    assert c.get(f"/v2/expect/blobs/{d}").content == data


def test_upload_uuid_traversal(registry, c):
    loc = c.start_upload("trav")
    c.push_blob("trav", b"x")
    for uuid in ("..", "..%2f..%2f..%2fetc%2fpasswd", "%2e%2e", "a/../../b", "x%00y",
                 "0" * 300, UUID_RE_SAMPLE.upper()):
        for method in ("GET", "PATCH", "PUT", "DELETE"):
            st, h, body = raw_request(
                registry.host, method, f"/v2/trav/blobs/uploads/{uuid}?digest={sha256(b'x')}",
                body=b"x", headers={"Content-Type": "application/octet-stream",
                                    "Content-Range": "0-0"})
            assert st in (400, 404), (method, uuid, st, body[:200])
    assert c.get(loc).status_code == 204
    assert c.get("/v2/").status_code == 200


def test_large_blob_chunked_and_ranges(c):
    data = rand_blob(8 * 1024 * 1024 + 12345)
    d = sha256(data)
    loc = c.start_upload("large")
    cuts = [0, 3 * 1024 * 1024 + 7, 5 * 1024 * 1024, len(data)]
    for a, b in zip(cuts, cuts[1:]):
        r = c.patch_chunk(loc, data[a:b], a)
        assert r.status_code == 202 and r.headers.get("Range") == f"0-{b - 1}"
        loc = c.location(r)
    assert c.put(with_query(loc, {"digest": d})).status_code == 201
    g = c.get(f"/v2/large/blobs/{d}")
    assert g.status_code == 200 and g.headers.get("Content-Length") == str(len(data))
    assert sha256(g.content) == d
    lo, hi = 4 * 1024 * 1024 - 5, 6 * 1024 * 1024 + 3
    r = c.get(f"/v2/large/blobs/{d}", headers={"Range": f"bytes={lo}-{hi}"})
    assert r.status_code == 206 and r.content == data[lo:hi + 1]


def test_parallel_chunked_uploads_interleaved(registry, c):
    """Two sessions in the same repository progress independently."""
    a, b = rand_blob(400), rand_blob(400)
    la, lb = c.start_upload("inter"), c.start_upload("inter")
    for off in range(0, 400, 100):
        ra = c.patch_chunk(la, a[off:off + 100], off)
        rb = c.patch_chunk(lb, b[off:off + 100], off)
        assert ra.status_code == rb.status_code == 202
        la, lb = c.location(ra), c.location(rb)
    assert c.put(with_query(la, {"digest": sha256(a)})).status_code == 201
    assert c.put(with_query(lb, {"digest": sha256(b)})).status_code == 201
    assert c.get(f"/v2/inter/blobs/{sha256(a)}").content == a
    assert c.get(f"/v2/inter/blobs/{sha256(b)}").content == b

