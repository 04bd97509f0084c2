"""OCI Distribution v1.1 protocol conformance of `fogport serve`, over HTTP with
python3-requests: base endpoint, blob uploads (monolithic, chunked, mount),
blob pulls with ranges, manifests of the four media types, tags and their
pagination, the catalog and the referrers API.

Every test gets a fresh registry (the `registry` fixture). Where Distribution
2.8 and the OCI v1.1 specification differ, these tests follow the spec."""
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from ocihelp import (
    DOCKER_LIST, DOCKER_MANIFEST, EMPTY_BLOB, EMPTY_DIGEST, OCI_CONFIG,
    OCI_EMPTY, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, UUID_RE, Client, assert_api_header,
    assert_error, desc, header_values, image_manifest, index_manifest, jbytes, rand_blob, sha256,
    sha512, with_query,
)

OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def c(registry):
    return Client(registry.url)


def tags_or_empty(c, repo):
    r = c.get(f"/v2/{repo}/tags/list")
    assert r.status_code in (200, 404), r.status_code
    return (r.json().get("tags") or []) if r.status_code == 200 else []


def content_type(resp):
    return resp.headers.get("Content-Type", "").split(";")[0].strip()


# ---------------------------------------------------------------------------
# base


def test_base_endpoint(c):
    r = c.get("/v2/")
    assert r.status_code == 200
    assert_api_header(r)
    r = c.head("/v2/")
    assert r.status_code == 200
    assert_api_header(r)


def test_api_version_header_on_every_response(c):
    """Success, redirect-less 201/202/204/206 and error responses all carry
    Docker-Distribution-API-Version: registry/2.0."""
    data = rand_blob(100)
    d = sha256(data)
    seen = []
    r = c.post("/v2/hdr/blobs/uploads/", headers={"Content-Length": "0"})
    seen.append(r)
    loc = c.location(r)
    seen.append(c.patch_chunk(loc, data[:50], 0))
    loc = c.location(seen[-1])
    seen.append(c.get(loc))  # 204
    seen.append(c.patch_chunk(loc, data[:50], 0))  # 416
    seen.append(c.put(with_query(loc, {"digest": d}), data=data[50:], headers=OCTET))  # 201
    seen.append(c.get(f"/v2/hdr/blobs/{d}"))  # 200
    seen.append(c.head(f"/v2/hdr/blobs/{d}"))
    seen.append(c.get(f"/v2/hdr/blobs/{d}", headers={"Range": "bytes=0-9"}))  # 206
    seen.append(c.get(f"/v2/hdr/blobs/{sha256(b'nope')}"))  # 404
    seen.append(c.head(f"/v2/hdr/blobs/{sha256(b'nope')}"))  # 404
    seen.append(c.get("/v2/hdr/manifests/nope"))  # 404
    seen.append(c.put("/v2/hdr/manifests/x", data=b"{", headers={"Content-Type": OCI_MANIFEST}))
    seen.append(c.get("/v2/nosuchrepo/tags/list"))
    seen.append(c.delete(f"/v2/hdr/blobs/{d}"))  # 202
    statuses = sorted({r.status_code for r in seen})
    assert {200, 201, 202, 204, 206, 400, 404, 416} <= set(statuses), statuses
    for r in seen:
        assert_api_header(r)


# ---------------------------------------------------------------------------
# blob uploads


def test_monolithic_single_post(c):
    data = rand_blob()
    d = sha256(data)
    r = c.post(f"/v2/mono/blobs/uploads/?digest={d}", data=data, headers=OCTET)
    assert r.status_code == 201, r.text
    assert r.headers.get("Docker-Content-Digest") == d
    loc = c.location(r)
    g = c.get(loc)
    assert g.status_code == 200 and g.content == data
    g = c.get(f"/v2/mono/blobs/{d}")
    assert g.status_code == 200 and g.content == data


def test_post_then_put(c):
    data = rand_blob()
    d = sha256(data)
    r = c.post("/v2/pp/blobs/uploads/", headers={"Content-Length": "0"})
    assert r.status_code == 202
    raw_loc = r.headers["Location"]
    assert UUID_RE.search(raw_loc), f"upload location has no UUID: {raw_loc}"
    # the blob is not there yet
    assert not c.blob_exists("pp", d)
    r = c.put(with_query(c.location(r), {"digest": d}), data=data, headers=OCTET)
    assert r.status_code == 201, r.text
    assert r.headers.get("Docker-Content-Digest") == d
    g = c.get(c.location(r))
    assert g.status_code == 200 and g.content == data


def test_upload_sessions_are_unique(c):
    a = c.start_upload("uniq")
    b = c.start_upload("uniq")
    assert UUID_RE.search(a).group(0) != UUID_RE.search(b).group(0)


def test_chunked_upload(c):
    data = rand_blob(3000)
    d = sha256(data)
    loc = c.start_upload("chunky")
    off = 0
    for size in (1000, 1, 999, 1000):
        r = c.patch_chunk(loc, data[off:off + size], off)
        off += size
        assert r.status_code == 202, r.text
        assert r.headers.get("Range") == f"0-{off - 1}"
        loc = c.location(r)
        s = c.get(loc)
        assert s.status_code == 204
        assert s.headers.get("Range") == f"0-{off - 1}"
        assert "Location" in s.headers
    assert not c.blob_exists("chunky", d)
    r = c.put(with_query(loc, {"digest": d}), headers={"Content-Length": "0"})
    assert r.status_code == 201, r.text
    assert r.headers.get("Docker-Content-Digest") == d
    g = c.get(f"/v2/chunky/blobs/{d}")
    assert g.status_code == 200 and g.content == data


def test_chunked_final_chunk_in_put(c):
    data = rand_blob(2500)
    d = sha256(data)
    loc = c.start_upload("chunky")
    r = c.patch_chunk(loc, data[:2000], 0)
    assert r.status_code == 202 and r.headers.get("Range") == "0-1999"
    loc = c.location(r)
    r = c.put(with_query(loc, {"digest": d}), data=data[2000:],
              headers={"Content-Type": "application/octet-stream",
                       "Content-Range": f"2000-{len(data) - 1}"})
    assert r.status_code == 201, r.text
    assert c.get(f"/v2/chunky/blobs/{d}").content == data


def test_patch_without_content_range_streams(c):
    """docker's client PATCHes the whole blob without Content-Range and then
    closes with an empty PUT; the registry appends to the session."""
    data = rand_blob(4000)
    d = sha256(data)
    loc = c.start_upload("stream")
    r = c.patch(loc, data=data, headers=OCTET)
    assert r.status_code == 202, r.text
    assert r.headers.get("Range") == f"0-{len(data) - 1}"
    r = c.put(with_query(c.location(r), {"digest": d}))
    assert r.status_code == 201, r.text
    assert c.get(f"/v2/stream/blobs/{d}").content == data


def test_chunk_out_of_order_is_416(c):
    data = rand_blob(300)
    d = sha256(data)
    loc = c.start_upload("ooo")
    r = c.patch_chunk(loc, data[:100], 0)
    assert r.status_code == 202
    loc = c.location(r)
    r = c.patch_chunk(loc, data[200:], 200)  # skips 100..199
    assert r.status_code == 416, r.text
    s = c.get(loc)
    assert s.status_code == 204 and s.headers.get("Range") == "0-99"
    # the session survives the 416 and continues from the right offset
    r = c.patch_chunk(c.location(s), data[100:200], 100)
    assert r.status_code == 202 and r.headers.get("Range") == "0-199"
    r = c.put(with_query(c.location(r), {"digest": d}), data=data[200:],
              headers={"Content-Type": "application/octet-stream", "Content-Range": "200-299"})
    assert r.status_code == 201, r.text
    assert c.get(f"/v2/ooo/blobs/{d}").content == data


def test_chunk_repeated_is_416(c):
    data = rand_blob(200)
    d = sha256(data)
    loc = c.start_upload("rep")
    r = c.patch_chunk(loc, data[:100], 0)
    assert r.status_code == 202
    loc = c.location(r)
    r = c.patch_chunk(loc, data[:100], 0)
    assert r.status_code == 416, r.text
    r = c.patch_chunk(loc, data[50:150], 50)  # overlapping
    assert r.status_code == 416, r.text
    s = c.get(loc)
    assert s.status_code == 204 and s.headers.get("Range") == "0-99"
    r = c.patch_chunk(loc, data[100:], 100)
    assert r.status_code == 202
    r = c.put(with_query(c.location(r), {"digest": d}))
    assert r.status_code == 201
    assert c.get(f"/v2/rep/blobs/{d}").content == data


def test_first_chunk_must_start_at_zero(c):
    data = rand_blob(100)
    loc = c.start_upload("zero")
    r = c.patch_chunk(loc, data, 5)
    assert r.status_code == 416, r.text


def test_final_put_chunk_out_of_order_is_416(c):
    data = rand_blob(200)
    d = sha256(data)
    loc = c.start_upload("finalooo")
    loc = c.location(c.patch_chunk(loc, data[:100], 0))
    r = c.put(with_query(loc, {"digest": d}), data=data[150:],
              headers={"Content-Type": "application/octet-stream", "Content-Range": "150-199"})
    assert r.status_code == 416, r.text
    assert not c.blob_exists("finalooo", d)


def test_upload_status(c):
    loc = c.start_upload("status")
    s = c.get(loc)
    assert s.status_code == 204
    assert re.fullmatch(r"0-\d+", s.headers.get("Range", "")), s.headers
    assert "Location" in s.headers
    r = c.patch_chunk(loc, b"x" * 10, 0)
    s = c.get(c.location(r))
    assert s.status_code == 204 and s.headers["Range"] == "0-9"
    assert s.content == b""


def test_cancel_upload(c):
    loc = c.start_upload("cancel")
    r = c.patch_chunk(loc, b"abc", 0)
    loc = c.location(r)
    r = c.delete(loc)
    assert r.status_code == 204, r.text
    assert_error(c.get(loc), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(c.patch_chunk(loc, b"def", 3), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(c.put(with_query(loc, {"digest": sha256(b"abc")})), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(c.delete(loc), 404, "BLOB_UPLOAD_UNKNOWN")
    assert not c.blob_exists("cancel", sha256(b"abc"))


def test_unknown_upload_uuid(c):
    c.start_upload("known")  # the repository exists
    u = "/v2/known/blobs/uploads/0b7f3f2c-8f0e-4b8e-9d2c-5a1e3c9d7f11"
    assert_error(c.get(u), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(c.patch(u, data=b"x", headers={"Content-Type": "application/octet-stream",
                                                 "Content-Range": "0-0"}),
                 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(c.put(u + "?digest=" + sha256(b"x"), data=b"x", headers=OCTET),
                 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(c.delete(u), 404, "BLOB_UPLOAD_UNKNOWN")


def test_upload_session_is_bound_to_its_repository(c):
    loc = c.start_upload("owner")
    uuid = UUID_RE.search(loc).group(0)
    other = f"/v2/thief/blobs/uploads/{uuid}"
    c.start_upload("thief")
    assert_error(c.get(other), 404, "BLOB_UPLOAD_UNKNOWN")
    data = b"stolen"
    r = c.put(other + "?digest=" + sha256(data), data=data, headers=OCTET)
    assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN")
    assert not c.blob_exists("thief", sha256(data))
    # the owner's session is intact
    assert c.get(loc).status_code == 204


def test_session_gone_after_completion(c):
    data = rand_blob()
    loc = c.start_upload("done")
    r = c.put(with_query(loc, {"digest": sha256(data)}), data=data, headers=OCTET)
    assert r.status_code == 201
    assert_error(c.get(loc), 404, "BLOB_UPLOAD_UNKNOWN")


def test_put_wrong_digest(c):
    data = rand_blob()
    wrong = sha256(data + b"!")
    loc = c.start_upload("wrong")
    r = c.put(with_query(loc, {"digest": wrong}), data=data, headers=OCTET)
    assert_error(r, 400, "DIGEST_INVALID")
    assert not c.blob_exists("wrong", wrong)
    assert not c.blob_exists("wrong", sha256(data))
    # the single-POST form too
    r = c.post(f"/v2/wrong/blobs/uploads/?digest={wrong}", data=data, headers=OCTET)
    assert_error(r, 400, "DIGEST_INVALID")
    assert not c.blob_exists("wrong", wrong)
    assert not c.blob_exists("wrong", sha256(data))


def test_chunked_wrong_digest(c):
    data = rand_blob(500)
    wrong = sha256(b"other")
    loc = c.location(c.patch_chunk(c.start_upload("cwrong"), data, 0))
    r = c.put(with_query(loc, {"digest": wrong}))
    assert_error(r, 400, "DIGEST_INVALID")
    assert not c.blob_exists("cwrong", wrong)
    assert not c.blob_exists("cwrong", sha256(data))


@pytest.mark.parametrize("bad", [
    "sha256:xyz",
    "sha256:" + "a" * 63,
    "sha256:" + "A" * 64,
    "sha256" + "a" * 64,
    "notadigest",
    "md5:d41d8cd98f00b204e9800998ecf8427e",
    "sha512:" + "a" * 64,
])
def test_malformed_digest(c, bad):
    data = b"some bytes"
    loc = c.start_upload("bad")
    r = c.put(with_query(loc, {"digest": bad}), data=data, headers=OCTET)
    assert_error(r, 400, "DIGEST_INVALID")
    r = c.post("/v2/bad/blobs/uploads/", params={"digest": bad}, data=data, headers=OCTET)
    assert_error(r, 400, "DIGEST_INVALID")
    assert not c.blob_exists("bad", sha256(data))


def test_sha512_upload(c):
    data = rand_blob(1500)
    d = sha512(data)
    # POST then PUT
    loc = c.start_upload("five12", **{"digest-algorithm": "sha512"})
    r = c.put(with_query(loc, {"digest": d}), data=data, headers=OCTET)
    assert r.status_code == 201, r.text
    # "MAY differ from the provided digest", but must be a digest of the content
    assert r.headers.get("Docker-Content-Digest") in (d, sha256(data))
    g = c.get(f"/v2/five12/blobs/{d}")
    assert g.status_code == 200 and g.content == data
    assert g.headers.get("Docker-Content-Digest") in (d, sha256(data))
    # chunked, without digest-algorithm
    data2 = rand_blob(1500)
    d2 = sha512(data2)
    loc = c.location(c.patch_chunk(c.start_upload("five12"), data2[:700], 0))
    r = c.put(with_query(loc, {"digest": d2}), data=data2[700:],
              headers={"Content-Type": "application/octet-stream",
                       "Content-Range": f"700-{len(data2) - 1}"})
    assert r.status_code == 201, r.text
    assert c.get(f"/v2/five12/blobs/{d2}").content == data2
    # single POST
    data3 = rand_blob(10)
    d3 = sha512(data3)
    r = c.post(f"/v2/five12/blobs/uploads/?digest={d3}", data=data3, headers=OCTET)
    assert r.status_code == 201, r.text
    assert c.head(f"/v2/five12/blobs/{d3}").headers.get("Content-Length") == "10"
    # a wrong sha512 is refused
    r = c.post(f"/v2/five12/blobs/uploads/?digest={sha512(b'x')}", data=data3, headers=OCTET)
    assert_error(r, 400, "DIGEST_INVALID")


def test_content_range_length_mismatch(c):
    """A chunk whose Content-Range disagrees with its Content-Length is refused
    with 400 and does not move the upload."""
    data = rand_blob(300)
    loc = c.location(c.patch_chunk(c.start_upload("sizes"), data[:100], 0))
    r = c.patch(loc, data=data[100:150], headers={"Content-Type": "application/octet-stream",
                                                   "Content-Range": "100-199"})
    assert_error(r, 400, "SIZE_INVALID", "BLOB_UPLOAD_INVALID")
    s = c.get(loc)
    assert s.status_code == 404 or s.headers.get("Range") == "0-99", (s.status_code, s.headers)
    # final PUT with the same inconsistency
    loc = c.location(c.patch_chunk(c.start_upload("sizes"), data[:100], 0))
    r = c.put(with_query(loc, {"digest": sha256(data)}), data=data[100:],
              headers={"Content-Type": "application/octet-stream", "Content-Range": "100-399"})
    assert_error(r, 400, "SIZE_INVALID", "BLOB_UPLOAD_INVALID")
    assert not c.blob_exists("sizes", sha256(data))


def test_empty_blob(c):
    d = sha256(b"")
    r = c.put(with_query(c.start_upload("empty"), {"digest": d}), data=b"", headers=OCTET)
    assert r.status_code == 201, r.text
    h = c.head(f"/v2/empty/blobs/{d}")
    assert h.status_code == 200 and h.headers.get("Content-Length") == "0"
    g = c.get(f"/v2/empty/blobs/{d}")
    assert g.status_code == 200 and g.content == b""


def test_reupload_existing_blob(c):
    data = rand_blob()
    d = c.push_blob("again", data)
    assert c.push_blob("again", data) == d
    assert c.get(f"/v2/again/blobs/{d}").content == data


# ---------------------------------------------------------------------------
# blob pulls


def test_blob_get_head(c):
    data = rand_blob(1234)
    d = c.push_blob("pull", data)
    g = c.get(f"/v2/pull/blobs/{d}")
    assert g.status_code == 200
    assert g.content == data
    assert g.headers.get("Content-Length") == "1234"
    assert g.headers.get("Docker-Content-Digest") == d
    assert content_type(g) == "application/octet-stream"
    h = c.head(f"/v2/pull/blobs/{d}")
    assert h.status_code == 200
    assert h.content == b""
    assert h.headers.get("Content-Length") == "1234"
    assert h.headers.get("Docker-Content-Digest") == d
    assert content_type(h) == "application/octet-stream"


def test_blob_range(c):
    data = rand_blob(1000)
    d = c.push_blob("ranges", data)
    u = f"/v2/ranges/blobs/{d}"
    for hdr, lo, hi in [("bytes=10-19", 10, 19), ("bytes=0-0", 0, 0), ("bytes=-5", 995, 999),
                        ("bytes=900-", 900, 999), ("bytes=990-5000", 990, 999),
                        ("bytes=-5000", 0, 999), ("bytes=999-999", 999, 999)]:
        r = c.get(u, headers={"Range": hdr})
        assert r.status_code == 206, (hdr, r.status_code)
        assert r.headers.get("Content-Range") == f"bytes {lo}-{hi}/1000", (hdr, r.headers)
        assert r.content == data[lo:hi + 1], hdr
        assert r.headers.get("Content-Length") == str(hi - lo + 1), hdr


def test_blob_range_malformed_is_ignored(c):
    """An invalid Range header is ignored (RFC 9110 14.2): the whole blob, 200."""
    data = rand_blob(100)
    d = c.push_blob("ranges", data)
    for hdr in ("bytes=abc", "items=0-5", "bytes=5-2"):
        r = c.get(f"/v2/ranges/blobs/{d}", headers={"Range": hdr})
        assert r.status_code == 200, (hdr, r.status_code)
        assert r.content == data, hdr


def test_blob_range_unsatisfiable(c):
    data = rand_blob(100)
    d = c.push_blob("ranges", data)
    for hdr in ("bytes=100-", "bytes=100-200", "bytes=5000-6000"):
        r = c.get(f"/v2/ranges/blobs/{d}", headers={"Range": hdr})
        assert r.status_code == 416, (hdr, r.status_code)
        assert r.headers.get("Content-Range") == "bytes */100", (hdr, r.headers)


def test_blob_unknown(c):
    c.push_blob("known", b"hello")
    d = sha256(b"never uploaded")
    assert_error(c.get(f"/v2/known/blobs/{d}"), 404, "BLOB_UNKNOWN")
    assert c.head(f"/v2/known/blobs/{d}").status_code == 404
    assert c.head(f"/v2/known/blobs/{d}").content == b""
    assert_error(c.get(f"/v2/nosuchrepo/blobs/{d}"), 404, "BLOB_UNKNOWN", "NAME_UNKNOWN")
    assert_error(c.get(f"/v2/known/blobs/{d}", headers={"Range": "bytes=0-1"}), 404, "BLOB_UNKNOWN")


def test_blob_delete(c):
    data = rand_blob()
    d = c.push_blob("del", data)
    keep = c.push_blob("del", rand_blob())
    r = c.delete(f"/v2/del/blobs/{d}")
    assert r.status_code == 202, r.text
    assert_error(c.get(f"/v2/del/blobs/{d}"), 404, "BLOB_UNKNOWN")
    assert c.head(f"/v2/del/blobs/{d}").status_code == 404
    assert_error(c.delete(f"/v2/del/blobs/{d}"), 404, "BLOB_UNKNOWN")
    assert c.blob_exists("del", keep)
    # uploading it again brings it back
    c.push_blob("del", data)
    assert c.get(f"/v2/del/blobs/{d}").content == data


def test_blob_delete_is_per_repository(c):
    data = rand_blob()
    d = c.push_blob("one", data)
    c.push_blob("two", data)
    assert c.delete(f"/v2/one/blobs/{d}").status_code == 202
    assert not c.blob_exists("one", d)
    assert c.get(f"/v2/two/blobs/{d}").content == data


def test_blob_of_other_repository_not_visible(c):
    data = rand_blob()
    d = c.push_blob("alpha", data)
    c.push_blob("beta", rand_blob())
    assert_error(c.get(f"/v2/beta/blobs/{d}"), 404, "BLOB_UNKNOWN")
    assert c.head(f"/v2/beta/blobs/{d}").status_code == 404
    r = c.post(f"/v2/beta/blobs/uploads/?mount={d}&from=alpha")
    assert r.status_code == 201
    assert c.get(f"/v2/beta/blobs/{d}").content == data


# ---------------------------------------------------------------------------
# cross-repository mount


def test_mount_from(c):
    data = rand_blob()
    d = c.push_blob("src", data)
    r = c.post(f"/v2/dst/blobs/uploads/?mount={d}&from=src")
    assert r.status_code == 201, r.text
    assert r.headers.get("Docker-Content-Digest") == d
    g = c.get(c.location(r))
    assert g.status_code == 200 and g.content == data
    # the mounted blob survives deletion in the source repository
    assert c.delete(f"/v2/src/blobs/{d}").status_code == 202
    assert c.get(f"/v2/dst/blobs/{d}").content == data


def test_mount_unknown_blob_starts_upload(c):
    c.push_blob("src", b"something")
    data = rand_blob()
    d = sha256(data)
    r = c.post(f"/v2/dst/blobs/uploads/?mount={d}&from=src")
    assert r.status_code == 202, r.text
    loc = c.location(r)
    assert UUID_RE.search(r.headers["Location"])
    assert not c.blob_exists("dst", d)
    r = c.put(with_query(loc, {"digest": d}), data=data, headers=OCTET)
    assert r.status_code == 201
    assert c.get(f"/v2/dst/blobs/{d}").content == data


def test_mount_without_from(c):
    """fogport mounts automatically when `from` is absent and the blob exists
    anywhere in the registry (the spec's MAY)."""
    data = rand_blob()
    d = c.push_blob("origin", data)
    r = c.post(f"/v2/elsewhere/blobs/uploads/?mount={d}")
    assert r.status_code == 201, r.text
    assert c.get(c.location(r)).content == data
    # and a mount of a blob that exists nowhere falls back to an upload session
    r = c.post(f"/v2/elsewhere/blobs/uploads/?mount={sha256(b'nowhere')}")
    assert r.status_code == 202
    assert c.get(c.location(r)).status_code == 204


# ---------------------------------------------------------------------------
# manifests


def _oci_image(c, repo):
    cfg = jbytes({"architecture": "amd64", "os": "linux", "n": rand_blob(4).hex()}, pretty=False)
    layer = rand_blob()
    c.push_blob(repo, cfg)
    c.push_blob(repo, layer)
    return image_manifest(cfg, [layer]), OCI_MANIFEST


def _docker_image(c, repo):
    cfg = jbytes({"architecture": "amd64", "os": "linux", "n": rand_blob(4).hex()}, pretty=False)
    layer = rand_blob()
    c.push_blob(repo, cfg)
    c.push_blob(repo, layer)
    return image_manifest(cfg, [layer], DOCKER_MANIFEST), DOCKER_MANIFEST


def _oci_index(c, repo):
    kids = []
    for _ in range(2):
        body, mt = _oci_image(c, repo)
        c.push_manifest(repo, sha256(body), body, mt)
        kids.append((body, mt))
    return index_manifest(kids), OCI_INDEX


def _docker_list(c, repo):
    kids = []
    for _ in range(2):
        body, mt = _docker_image(c, repo)
        c.push_manifest(repo, sha256(body), body, mt)
        kids.append((body, mt))
    return index_manifest(kids, DOCKER_LIST), DOCKER_LIST


BUILDERS = {"oci-manifest": _oci_image, "oci-index": _oci_index,
            "docker-manifest": _docker_image, "docker-list": _docker_list}


def check_manifest_response(r, body, mt, head=False):
    assert r.status_code == 200, (r.status_code, r.text)
    assert content_type(r) == mt
    assert r.headers.get("Docker-Content-Digest") == sha256(body)
    assert r.headers.get("Content-Length") == str(len(body))
    assert r.content == (b"" if head else body)


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_manifest_push_pull(c, kind):
    repo = "man/" + kind
    body, mt = BUILDERS[kind](c, repo)
    d = sha256(body)
    r = c.put_manifest(repo, "v1", body, mt)
    assert r.status_code == 201, r.text
    assert r.headers.get("Docker-Content-Digest") == d
    assert c.get(c.location(r)).content == body
    for ref in ("v1", d):
        check_manifest_response(c.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": mt}),
                                body, mt)
        check_manifest_response(c.head(f"/v2/{repo}/manifests/{ref}", headers={"Accept": mt}),
                                body, mt, head=True)
    # by digest, under a second repository, without a tag
    repo2 = repo + "-bydigest"
    body2, mt2 = BUILDERS[kind](c, repo2)
    d2 = sha256(body2)
    r = c.put_manifest(repo2, d2, body2, mt2)
    assert r.status_code == 201, r.text
    assert r.headers.get("Docker-Content-Digest") == d2
    check_manifest_response(c.get(f"/v2/{repo2}/manifests/{d2}"), body2, mt2)
    assert c.tags(repo2) == []


def test_manifest_exact_bytes_and_content_type_kept(c):
    """The stored bytes are the pushed bytes (odd whitespace, key order kept)
    and a manifest without mediaType is served with the pushed Content-Type."""
    cfg, layer = b'{"os":"linux"}', rand_blob()
    c.push_blob("exact", cfg)
    c.push_blob("exact", layer)
    text = ('{ "layers" :[ %s ],\n\t"schemaVersion":2 ,"config":%s }\n\n' % (
        json.dumps(desc(OCI_LAYER, layer)), json.dumps(desc(OCI_CONFIG, cfg)))).encode()
    r = c.put_manifest("exact", "odd", text, OCI_MANIFEST)
    assert r.status_code == 201, r.text
    check_manifest_response(c.get("/v2/exact/manifests/odd"), text, OCI_MANIFEST)


def test_manifest_content_type_parameters_ignored(c):
    body, mt = _oci_image(c, "params")
    r = c.put_manifest("params", "t", body, mt + "; charset=utf-8")
    assert r.status_code == 201, r.text
    check_manifest_response(c.get("/v2/params/manifests/t"), body, mt)


def test_manifest_missing_blob(c):
    cfg, layer = b'{"os":"linux"}', rand_blob()
    c.push_blob("missing", cfg)
    body = image_manifest(cfg, [layer])  # layer never uploaded
    assert_error(c.put_manifest("missing", "t", body, OCI_MANIFEST), 400, "MANIFEST_BLOB_UNKNOWN")
    # config missing
    c.push_blob("missing", layer)
    body = image_manifest(b'{"os":"plan9"}', [layer])
    assert_error(c.put_manifest("missing", "t", body, OCI_MANIFEST), 400, "MANIFEST_BLOB_UNKNOWN")
    assert_error(c.get("/v2/missing/manifests/t"), 404, "MANIFEST_UNKNOWN")
    assert_error(c.get(f"/v2/missing/manifests/{sha256(body)}"), 404, "MANIFEST_UNKNOWN")


def test_manifest_blob_in_other_repository_is_not_enough(c):
    cfg, layer = b'{"os":"linux"}', rand_blob()
    c.push_blob("mine", cfg)
    c.push_blob("mine", layer)
    c.push_blob("yours", cfg)
    body = image_manifest(cfg, [layer])
    assert_error(c.put_manifest("yours", "t", body, OCI_MANIFEST), 400, "MANIFEST_BLOB_UNKNOWN")


def test_index_missing_child(c):
    child, mt = _oci_image(c, "idx")  # blobs uploaded, manifest itself not pushed
    body = index_manifest([(child, mt)])
    assert_error(c.put_manifest("idx", "t", body, OCI_INDEX), 400, "MANIFEST_BLOB_UNKNOWN")
    c.push_manifest("idx", sha256(child), child, mt)
    assert c.put_manifest("idx", "t", body, OCI_INDEX).status_code == 201


@pytest.mark.parametrize("body,codes", [
    (b"{", ("MANIFEST_INVALID",)),
    (b"not json at all", ("MANIFEST_INVALID",)),
    (b"", ("MANIFEST_INVALID",)),
    (b"[1, 2, 3]", ("MANIFEST_INVALID",)),
    (b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", '
     b'"config": "nope", "layers": []}', ("MANIFEST_INVALID",)),
    # a descriptor with a malformed digest: invalid (or, at worst, unknown)
    (b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", '
     b'"config": {"mediaType": "a/b", "digest": "sha256:zz", "size": 2}, "layers": []}',
     ("MANIFEST_INVALID", "MANIFEST_BLOB_UNKNOWN", "DIGEST_INVALID")),
    (b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", '
     b'"layers": {}}', ("MANIFEST_INVALID",)),
    (b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", '
     b'"annotations": {"k": "\xff\xfe"}, "layers": []}', ("MANIFEST_INVALID",)),
    (b'{"a":' * 100000 + b'1' + b'}' * 100000, ("MANIFEST_INVALID",)),
    (b'[' * 200000, ("MANIFEST_INVALID",)),
], ids=["truncated", "text", "empty", "array", "config-string", "bad-digest", "layers-object",
        "bad-utf8", "deep-objects", "deep-arrays"])
def test_manifest_invalid(c, body, codes):
    c.push_blob("inv", b"x")
    r = c.put_manifest("inv", "bad", body, OCI_MANIFEST)
    assert_error(r, 400, *codes)
    assert c.get("/v2/inv/manifests/bad").status_code == 404


def test_manifest_without_content_type_uses_media_type(c):
    body, mt = _docker_image(c, "noct")
    r = c.put("/v2/noct/manifests/v1", data=body)  # requests sends no Content-Type
    assert r.status_code == 201, r.text
    check_manifest_response(c.get("/v2/noct/manifests/v1"), body, DOCKER_MANIFEST)


@pytest.mark.parametrize("version", [1, 3])
def test_manifest_schema_version_must_be_2(c, version):
    body, mt = _oci_image(c, "sv")
    m = json.loads(body)
    m["schemaVersion"] = version
    r = c.put_manifest("sv", "x", jbytes(m), mt)
    assert_error(r, 400, "MANIFEST_INVALID")


def test_manifest_media_type_mismatch(c):
    body, mt = _oci_image(c, "mt")
    r = c.put_manifest("mt", "x", body, DOCKER_MANIFEST)
    assert_error(r, 400, "MANIFEST_INVALID")
    dbody, dmt = _docker_image(c, "mt")
    r = c.put_manifest("mt", "y", dbody, OCI_MANIFEST)
    assert_error(r, 400, "MANIFEST_INVALID")
    assert tags_or_empty(c, "mt") == []
    assert c.get(f"/v2/mt/manifests/{sha256(body)}").status_code == 404


def _big_manifest(c, repo, size):
    cfg = b'{"os":"linux"}'
    c.push_blob(repo, cfg)
    m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": desc(OCI_CONFIG, cfg),
         "layers": [], "annotations": {"pad": ""}}
    base = len(jbytes(m, pretty=False))
    m["annotations"]["pad"] = "p" * (size - base)
    body = jbytes(m, pretty=False)
    assert len(body) == size
    return body


def _put_expecting_413(c, repo, ref, body, chunked=False):
    data = body
    if chunked:  # no Content-Length: the limit must be enforced while reading
        data = (body[i:i + 65536] for i in range(0, len(body), 65536))
    try:
        r = c.put_manifest(repo, ref, data, OCI_MANIFEST)
    except requests.ConnectionError as e:
        pytest.fail(f"PUT of a {len(body)}-byte manifest: expected a 413 response, the "
                    f"connection was reset instead (server answered early and closed "
                    f"without reading/draining the body): {e}")
    assert r.status_code == 413, (r.status_code, r.text[:200])


def test_manifest_size_limit(c):
    big = _big_manifest(c, "big", 4 * 1024 * 1024 + 1024)
    for _ in range(3):  # a server that resets instead of answering does so only sometimes
        _put_expecting_413(c, "big", "huge", big)
    assert c.get("/v2/big/manifests/huge").status_code == 404
    # just under 4 MiB is accepted (the spec: support at least 4 megabytes)
    ok = _big_manifest(c, "big", 4 * 1024 * 1024 - 4096)
    r = c.put_manifest("big", "large", ok, OCI_MANIFEST)
    assert r.status_code == 201, (r.status_code, r.text[:200])
    assert c.get("/v2/big/manifests/large").content == ok


def test_manifest_size_limit_chunked_body(c):
    big = _big_manifest(c, "bigc", 4 * 1024 * 1024 + 1024)
    _put_expecting_413(c, "bigc", "huge", big, chunked=True)
    assert c.get("/v2/bigc/manifests/huge").status_code == 404
    assert c.get("/v2/").status_code == 200


def test_manifest_put_by_sha512_digest(c):
    body, mt = _oci_image(c, "m512")
    d = sha512(body)
    r = c.put_manifest("m512", d, body, mt)
    assert r.status_code == 201, r.text
    assert r.headers.get("Docker-Content-Digest") == d  # "MUST be equal to the client provided"
    g = c.get(f"/v2/m512/manifests/{d}")
    assert g.status_code == 200 and g.content == body
    assert g.headers.get("Docker-Content-Digest") in (d, sha256(body))
    assert_error(c.put_manifest("m512", sha512(body + b" "), body, mt), 400, "DIGEST_INVALID")


def test_manifest_put_is_idempotent(c):
    body, mt = _oci_image(c, "idem")
    for _ in range(3):
        r = c.put_manifest("idem", "v1", body, mt)
        assert r.status_code == 201
        assert r.headers.get("Docker-Content-Digest") == sha256(body)
    assert c.put_manifest("idem", sha256(body), body, mt).status_code == 201
    assert c.tags("idem") == ["v1"]
    check_manifest_response(c.get("/v2/idem/manifests/v1"), body, mt)


def test_manifest_referencing_deleted_blob(c):
    cfg, layer = b'{"os":"linux"}', rand_blob()
    c.push_blob("gone", cfg)
    ld = c.push_blob("gone", layer)
    assert c.delete(f"/v2/gone/blobs/{ld}").status_code == 202
    body = image_manifest(cfg, [layer])
    assert_error(c.put_manifest("gone", "t", body, OCI_MANIFEST), 400, "MANIFEST_BLOB_UNKNOWN")


def test_manifest_put_by_digest_mismatch(c):
    body, mt = _oci_image(c, "dm")
    other = sha256(body + b" ")
    r = c.put_manifest("dm", other, body, mt)
    assert_error(r, 400, "DIGEST_INVALID")
    assert c.get(f"/v2/dm/manifests/{other}").status_code == 404
    assert c.get(f"/v2/dm/manifests/{sha256(body)}").status_code == 404


def test_manifest_put_with_tag_params(c):
    body, mt = _oci_image(c, "multi")
    d = sha256(body)
    r = c.put_manifest("multi", d, body, mt, params=[("tag", "a"), ("tag", "b"), ("tag", "1.0")])
    assert r.status_code == 201, r.text
    assert r.headers.get("Docker-Content-Digest") == d
    assert sorted(header_values(r, "OCI-Tag")) == ["1.0", "a", "b"]
    assert c.tags("multi") == ["1.0", "a", "b"]
    for t in ("a", "b", "1.0"):
        check_manifest_response(c.get(f"/v2/multi/manifests/{t}"), body, mt)
    # at least ten tags in one request
    body2, _ = _oci_image(c, "multi")
    ten = [f"r{i}" for i in range(10)]
    r = c.put_manifest("multi", sha256(body2), body2, mt, params=[("tag", t) for t in ten])
    assert r.status_code == 201, r.text
    assert sorted(header_values(r, "OCI-Tag")) == ten
    assert c.tags("multi") == sorted(["1.0", "a", "b"] + ten)
    assert c.get("/v2/multi/manifests/r9").content == body2


def test_manifest_put_with_invalid_tag_param(c):
    body, mt = _oci_image(c, "multi")
    d = sha256(body)
    r = c.put_manifest("multi", d, body, mt, params=[("tag", "ok"), ("tag", "-bad")])
    assert r.status_code == 400, r.status_code
    assert "ok" not in tags_or_empty(c, "multi")


def test_manifest_tag_concurrent_overwrite(registry, c):
    """Parallel pushes to one tag leave it pointing at one complete manifest."""
    from concurrent.futures import ThreadPoolExecutor
    bodies = [_oci_image(c, "race")[0] for _ in range(8)]

    def push(b):
        return Client(registry.url).put_manifest("race", "latest", b, OCI_MANIFEST).status_code

    with ThreadPoolExecutor(max_workers=8) as ex:
        assert list(ex.map(push, bodies)) == [201] * 8
    g = c.get("/v2/race/manifests/latest")
    assert g.status_code == 200 and g.content in bodies
    assert g.headers.get("Docker-Content-Digest") == sha256(g.content)
    assert c.tags("race") == ["latest"]
    for b in bodies:
        assert c.head(f"/v2/race/manifests/{sha256(b)}").status_code == 200


def test_manifest_tag_overwrite(c):
    a, mt = _oci_image(c, "ow")
    b, _ = _oci_image(c, "ow")
    c.push_manifest("ow", "latest", a, mt)
    c.push_manifest("ow", "latest", b, mt)
    check_manifest_response(c.get("/v2/ow/manifests/latest"), b, mt)
    check_manifest_response(c.get(f"/v2/ow/manifests/{sha256(a)}"), a, mt)
    assert c.tags("ow") == ["latest"]


def test_manifest_delete_by_digest(c):
    body, mt = _oci_image(c, "mdel")
    d = sha256(body)
    c.push_manifest("mdel", "t1", body, mt)
    c.push_manifest("mdel", "t2", body, mt)
    other, _ = _oci_image(c, "mdel")
    c.push_manifest("mdel", "keep", other, mt)
    r = c.delete(f"/v2/mdel/manifests/{d}")
    assert r.status_code == 202, r.text
    assert_error(c.get(f"/v2/mdel/manifests/{d}"), 404, "MANIFEST_UNKNOWN")
    assert c.head(f"/v2/mdel/manifests/{d}").status_code == 404
    for t in ("t1", "t2"):
        assert_error(c.get(f"/v2/mdel/manifests/{t}"), 404, "MANIFEST_UNKNOWN")
    assert c.tags("mdel") == ["keep"]
    assert_error(c.delete(f"/v2/mdel/manifests/{d}"), 404, "MANIFEST_UNKNOWN")
    check_manifest_response(c.get("/v2/mdel/manifests/keep"), other, mt)


def test_tag_delete(c):
    body, mt = _oci_image(c, "tdel")
    d = sha256(body)
    c.push_manifest("tdel", "gone", body, mt)
    c.push_manifest("tdel", "stays", body, mt)
    r = c.delete("/v2/tdel/manifests/gone")
    assert r.status_code == 202, r.text
    assert_error(c.get("/v2/tdel/manifests/gone"), 404, "MANIFEST_UNKNOWN")
    check_manifest_response(c.get(f"/v2/tdel/manifests/{d}"), body, mt)
    check_manifest_response(c.get("/v2/tdel/manifests/stays"), body, mt)
    assert c.tags("tdel") == ["stays"]
    assert_error(c.delete("/v2/tdel/manifests/gone"), 404, "MANIFEST_UNKNOWN")


def test_manifest_unknown(c):
    body, mt = _oci_image(c, "unk")
    c.push_manifest("unk", "there", body, mt)
    for ref in ("nope", sha256(b"nope")):
        assert_error(c.get(f"/v2/unk/manifests/{ref}"), 404, "MANIFEST_UNKNOWN")
        h = c.head(f"/v2/unk/manifests/{ref}")
        assert h.status_code == 404 and h.content == b""
    assert_error(c.get("/v2/nosuchrepo/manifests/latest"), 404, "MANIFEST_UNKNOWN", "NAME_UNKNOWN")


@pytest.mark.parametrize("tag", ["-leadingdash", ".dot", "a" * 129, "has%20space", "a+b"])
def test_manifest_invalid_tag(c, tag):
    body, mt = _oci_image(c, "badtag")
    r = c.put(f"/v2/badtag/manifests/{tag}", data=body, headers={"Content-Type": mt})
    assert r.status_code in (400, 404), (tag, r.status_code)
    assert tags_or_empty(c, "badtag") == []


def test_manifest_valid_tag_charset(c):
    body, mt = _oci_image(c, "goodtag")
    tags = ["_under", "UPPER.lower-1_2", "a" * 128, "0"]
    for t in tags:
        assert c.put_manifest("goodtag", t, body, mt).status_code == 201, t
    assert c.tags("goodtag") == sorted(tags)
    for t in tags:
        assert c.get(f"/v2/goodtag/manifests/{t}").content == body


# ---------------------------------------------------------------------------
# tags list


def _push_tags(c, repo, tags):
    body, mt = _oci_image(c, repo)
    for t in tags:
        c.push_manifest(repo, t, body, mt)
    return body


LINK_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


def _next(r):
    link = r.headers.get("Link")
    if link is None:
        return None
    m = LINK_RE.search(link)
    assert m, f"malformed Link header: {link!r}"
    return m.group(1)


def test_tags_list_sorted(c):
    tags = ["zeta", "Alpha", "alpha", "1.0", "10", "2", "_x", "b-2", "b.1", "B"]
    _push_tags(c, "sorted", tags)
    r = c.get("/v2/sorted/tags/list")
    assert r.status_code == 200
    assert r.json() == {"name": "sorted", "tags": sorted(tags)}
    assert "Link" not in r.headers


def test_tags_pagination(c):
    tags = [f"t{i:02d}" for i in range(7)]
    _push_tags(c, "pages", tags)
    url = "/v2/pages/tags/list?n=3"
    got, pages = [], []
    while url:
        r = c.get(url)
        assert r.status_code == 200, r.text
        page = r.json()["tags"]
        assert len(page) <= 3
        pages.append(page)
        got += page
        nxt = _next(r)
        if nxt:
            u = urlsplit(nxt)
            assert u.path == "/v2/pages/tags/list", nxt
            q = parse_qs(u.query)
            assert q.get("n") == ["3"] and q.get("last") == [page[-1]], nxt
        url = nxt
        assert len(pages) < 10
    assert pages == [tags[0:3], tags[3:6], tags[6:7]]
    assert got == tags


def test_tags_pagination_exact_multiple(c):
    """When the last page is full, there is nothing more: no Link."""
    tags = ["a", "b", "c", "d"]
    _push_tags(c, "exact", tags)
    r = c.get("/v2/exact/tags/list?n=2")
    assert r.json()["tags"] == ["a", "b"]
    assert _next(r) is not None
    r = c.get("/v2/exact/tags/list?n=2&last=b")
    assert r.json()["tags"] == ["c", "d"]
    assert "Link" not in r.headers, r.headers.get("Link")
    r = c.get("/v2/exact/tags/list?n=4")
    assert r.json()["tags"] == tags
    assert "Link" not in r.headers


def test_tags_last_without_n(c):
    _push_tags(c, "last", ["a", "b", "c", "d"])
    r = c.get("/v2/last/tags/list?last=b")
    assert r.status_code == 200
    assert r.json()["tags"] == ["c", "d"]
    # last need not be an existing tag
    assert c.tags("last", last="bb") == ["c", "d"]
    assert c.tags("last", last="d") == []
    assert c.tags("last", n=1, last="a") == ["b"]


def test_tags_n_zero(c):
    _push_tags(c, "nzero", ["a", "b"])
    r = c.get("/v2/nzero/tags/list?n=0")
    assert r.status_code == 200
    assert r.json().get("tags") == []
    assert "Link" not in r.headers


def test_tags_huge_n(c):
    _push_tags(c, "hugen", ["a", "b", "c"])
    r = c.get(f"/v2/hugen/tags/list?n={10**12}")
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == ["a", "b", "c"]
    assert "Link" not in r.headers
    r = c.get(f"/v2/hugen/tags/list?n={10**30}")
    assert r.status_code in (200, 400), r.status_code


def test_tags_unknown_repo(c):
    assert_error(c.get("/v2/nobody/tags/list"), 404, "NAME_UNKNOWN")
    assert_error(c.get("/v2/nobody/tags/list?n=10"), 404, "NAME_UNKNOWN")


def test_tags_list_repo_without_tags(c):
    body, mt = _oci_image(c, "untagged")
    c.push_manifest("untagged", sha256(body), body, mt)
    r = c.get("/v2/untagged/tags/list")
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "untagged"
    assert (r.json().get("tags") or []) == []


# ---------------------------------------------------------------------------
# catalog


def test_catalog(c):
    assert c.get("/v2/_catalog").status_code == 200
    assert (c.get("/v2/_catalog").json().get("repositories") or []) == []
    repos = ["zoo", "app", "team/web", "team/api", "a/b/c", "mid"]
    for rp in repos:
        _oci_image(c, rp)
        body, mt = _oci_image(c, rp)
        c.push_manifest(rp, "latest", body, mt)
    r = c.get("/v2/_catalog")
    assert r.status_code == 200
    assert r.json()["repositories"] == sorted(repos)
    got, url, n = [], "/v2/_catalog?n=4", 0
    pages = []
    while url:
        r = c.get(url)
        assert r.status_code == 200
        page = r.json()["repositories"]
        pages.append(page)
        got += page
        nxt = _next(r)
        if nxt:
            u = urlsplit(nxt)
            assert u.path == "/v2/_catalog", nxt
            q = parse_qs(u.query)
            assert q.get("n") == ["4"] and q.get("last") == [page[-1]], nxt
        url = nxt
        n += 1
        assert n < 10
    assert got == sorted(repos)
    assert pages[0] == sorted(repos)[:4]
    r = c.get("/v2/_catalog?n=2&last=mid")
    assert r.json()["repositories"] == ["team/api", "team/web"]
    r = c.get("/v2/_catalog?last=team/web")
    assert r.json()["repositories"] == ["zoo"]
    r = c.get("/v2/_catalog?n=0")
    assert r.status_code == 200 and (r.json().get("repositories") or []) == []
    assert "Link" not in r.headers


# ---------------------------------------------------------------------------
# referrers

SBOM = "application/vnd.example.sbom.v1"
SIG = "application/vnd.example.signature.v1"


def _artifact(c, repo, subject_body, subject_mt, artifact_type=None, annotations=None,
              config_mt=OCI_EMPTY, payload=None):
    c.push_blob(repo, EMPTY_BLOB)
    layer = payload if payload is not None else rand_blob(50)
    c.push_blob(repo, layer)
    m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
         "config": {"mediaType": config_mt, "digest": EMPTY_DIGEST, "size": 2},
         "layers": [desc("application/octet-stream", layer)],
         "subject": desc(subject_mt, subject_body)}
    if artifact_type:
        m["artifactType"] = artifact_type
    if annotations:
        m["annotations"] = annotations
    return jbytes(m)


def _referrers(c, repo, digest, **params):
    r = c.get(f"/v2/{repo}/referrers/{digest}", params=params)
    assert r.status_code == 200, (r.status_code, r.text)
    assert content_type(r) == OCI_INDEX
    idx = r.json()
    assert idx["schemaVersion"] == 2 and idx["mediaType"] == OCI_INDEX
    return r, idx["manifests"]


def test_empty_descriptor_digest():
    assert sha256(EMPTY_BLOB) == EMPTY_DIGEST


def test_referrers(c):
    img, img_d = c.push_image("refs", tag="v1")
    ann = {"org.opencontainers.image.created": "2024-01-01T00:00:00Z",
           "org.example.sbom.format": "json"}
    art = _artifact(c, "refs", img, OCI_MANIFEST, SBOM, ann)
    r = c.put_manifest("refs", sha256(art), art, OCI_MANIFEST)
    assert r.status_code == 201, r.text
    assert r.headers.get("OCI-Subject") == img_d
    r, ms = _referrers(c, "refs", img_d)
    assert ms == [{"mediaType": OCI_MANIFEST, "digest": sha256(art), "size": len(art),
                   "artifactType": SBOM, "annotations": ann}]
    # the artifact itself has no referrers: an empty list, not 404
    _, ms = _referrers(c, "refs", sha256(art))
    assert ms == []


def test_referrers_filter(c):
    img, img_d = c.push_image("filt", tag="v1")
    sbom = _artifact(c, "filt", img, OCI_MANIFEST, SBOM, {"k": "sbom"})
    sig = _artifact(c, "filt", img, OCI_MANIFEST, SIG, {"k": "sig"})
    c.push_manifest("filt", sha256(sbom), sbom, OCI_MANIFEST)
    c.push_manifest("filt", "sig", sig, OCI_MANIFEST)  # by tag works too
    _, ms = _referrers(c, "filt", img_d)
    assert sorted(m["digest"] for m in ms) == sorted([sha256(sbom), sha256(sig)])
    assert {m["digest"]: m["artifactType"] for m in ms} == {sha256(sbom): SBOM, sha256(sig): SIG}
    r, ms = _referrers(c, "filt", img_d, artifactType=SBOM)
    assert [m["digest"] for m in ms] == [sha256(sbom)]
    assert [v.lower() for v in header_values(r, "OCI-Filters-Applied")] == ["artifacttype"]
    plus = "application/vnd.example.sig+json"
    sig2 = _artifact(c, "filt", img, OCI_MANIFEST, plus)
    c.push_manifest("filt", sha256(sig2), sig2, OCI_MANIFEST)
    r, ms = _referrers(c, "filt", img_d, artifactType=plus)  # sent as ...sig%2Bjson
    assert [m["digest"] for m in ms] == [sha256(sig2)]
    r, ms = _referrers(c, "filt", img_d, artifactType="application/vnd.example.none")
    assert ms == []
    assert [v.lower() for v in header_values(r, "OCI-Filters-Applied")] == ["artifacttype"]


def test_referrers_artifact_type_from_config(c):
    img, img_d = c.push_image("cfgtype", tag="v1")
    cfg_mt = "application/vnd.example.config.v1+json"
    art = _artifact(c, "cfgtype", img, OCI_MANIFEST, artifact_type=None, config_mt=cfg_mt)
    r = c.put_manifest("cfgtype", sha256(art), art, OCI_MANIFEST)
    assert r.status_code == 201 and r.headers.get("OCI-Subject") == img_d
    _, ms = _referrers(c, "cfgtype", img_d)
    assert len(ms) == 1
    assert ms[0]["artifactType"] == cfg_mt
    assert ms[0]["digest"] == sha256(art)
    assert not ms[0].get("annotations")
    _, ms = _referrers(c, "cfgtype", img_d, artifactType=cfg_mt)
    assert [m["digest"] for m in ms] == [sha256(art)]


def test_referrers_index_subject(c):
    """An index can refer too; without artifactType its descriptor has none."""
    img, img_d = c.push_image("idxref", tag="v1")
    child, child_d = c.push_image("idxref")
    idx = index_manifest([(child, OCI_MANIFEST)], subject=desc(OCI_MANIFEST, img),
                         annotations={"x": "y"})
    r = c.put_manifest("idxref", sha256(idx), idx, OCI_INDEX)
    assert r.status_code == 201, r.text
    assert r.headers.get("OCI-Subject") == img_d
    idx2 = index_manifest([(child, OCI_MANIFEST)], subject=desc(OCI_MANIFEST, img),
                          artifactType=SIG)
    c.push_manifest("idxref", sha256(idx2), idx2, OCI_INDEX)
    _, ms = _referrers(c, "idxref", img_d)
    by = {m["digest"]: m for m in ms}
    assert set(by) == {sha256(idx), sha256(idx2)}
    assert by[sha256(idx)]["mediaType"] == OCI_INDEX
    assert "artifactType" not in by[sha256(idx)]
    assert by[sha256(idx)]["annotations"] == {"x": "y"}
    assert by[sha256(idx2)]["artifactType"] == SIG


def test_referrers_subject_pushed_later(c):
    """A manifest whose subject does not exist yet is accepted."""
    cfg = b'{"os":"linux","late":1}'
    layer = rand_blob()
    img = image_manifest(cfg, [layer])
    img_d = sha256(img)
    art = _artifact(c, "late", img, OCI_MANIFEST, SBOM)
    r = c.put_manifest("late", sha256(art), art, OCI_MANIFEST)
    assert r.status_code == 201, r.text
    assert r.headers.get("OCI-Subject") == img_d
    _, ms = _referrers(c, "late", img_d)
    assert [m["digest"] for m in ms] == [sha256(art)]
    c.push_blob("late", cfg)
    c.push_blob("late", layer)
    c.push_manifest("late", "v1", img, OCI_MANIFEST)
    _, ms = _referrers(c, "late", img_d)
    assert [m["digest"] for m in ms] == [sha256(art)]


def test_referrers_after_delete_and_per_repository(c):
    img, img_d = c.push_image("rdel", tag="v1")
    art = _artifact(c, "rdel", img, OCI_MANIFEST, SBOM)
    c.push_manifest("rdel", sha256(art), art, OCI_MANIFEST)
    # another repository with the same subject digest sees nothing
    c.push_blob("rother", b"x")
    _, ms = _referrers(c, "rother", img_d)
    assert ms == []
    assert c.delete(f"/v2/rdel/manifests/{sha256(art)}").status_code == 202
    _, ms = _referrers(c, "rdel", img_d)
    assert ms == []


def test_referrers_survive_tag_delete_and_are_not_duplicated(c):
    img, img_d = c.push_image("rtag", tag="v1")
    art = _artifact(c, "rtag", img, OCI_MANIFEST, SBOM)
    c.push_manifest("rtag", "sbom", art, OCI_MANIFEST)
    c.push_manifest("rtag", sha256(art), art, OCI_MANIFEST)  # same manifest again
    c.push_manifest("rtag", "sbom2", art, OCI_MANIFEST)  # and under another tag
    _, ms = _referrers(c, "rtag", img_d)
    assert [m["digest"] for m in ms] == [sha256(art)]
    # deleting a tag does not delete the manifest: still a referrer
    assert c.delete("/v2/rtag/manifests/sbom").status_code == 202
    assert c.delete("/v2/rtag/manifests/sbom2").status_code == 202
    _, ms = _referrers(c, "rtag", img_d)
    assert [m["digest"] for m in ms] == [sha256(art)]


def test_referrers_none(c):
    img, img_d = c.push_image("noref", tag="v1")
    _, ms = _referrers(c, "noref", img_d)
    assert ms == []
    _, ms = _referrers(c, "noref", sha256(b"not a manifest here"))
    assert ms == []


@pytest.mark.parametrize("bad", ["sha256:xyz", "notadigest", "sha256:" + "g" * 64,
                                 "sha256:" + "a" * 63])
def test_referrers_invalid_digest(c, bad):
    c.push_image("badref", tag="v1")
    r = c.get(f"/v2/badref/referrers/{bad}")
    assert_error(r, 400, "DIGEST_INVALID", "MANIFEST_INVALID", "UNSUPPORTED", "NAME_INVALID")


def test_referrers_docker_subject_manifest(c):
    """The subject may be any manifest, a docker one included."""
    img, img_d = c.push_image("dref", tag="v1", media_type=DOCKER_MANIFEST)
    art = _artifact(c, "dref", img, DOCKER_MANIFEST, SBOM)
    r = c.put_manifest("dref", sha256(art), art, OCI_MANIFEST)
    assert r.status_code == 201 and r.headers.get("OCI-Subject") == img_d
    _, ms = _referrers(c, "dref", img_d)
    assert [m["digest"] for m in ms] == [sha256(art)]


# ---------------------------------------------------------------------------
# nested names


@pytest.mark.parametrize("repo", ["a/b/c", "team/blobs/app", "x/manifests/y", "p/tags/list/q",
                                  "ns/referrers", "a.b_c__d--e/f-g"])
def test_nested_and_tricky_names(c, repo):
    body, d = c.push_image(repo, tag="latest")
    check_manifest_response(c.get(f"/v2/{repo}/manifests/latest"), body, OCI_MANIFEST)
    assert c.tags(repo) == ["latest"]
    cfg_d = json.loads(body)["config"]["digest"]
    assert c.blob_exists(repo, cfg_d)
    assert repo in c.get("/v2/_catalog").json()["repositories"]
    assert c.delete(f"/v2/{repo}/manifests/latest").status_code == 202
    assert c.get(f"/v2/{repo}/manifests/{d}").status_code == 200


@pytest.mark.parametrize("repo", ["ns/referrers", "a/referrers/b"])
def test_referrers_nested_name(c, repo):
    img, img_d = c.push_image(repo, tag="v1")
    art = _artifact(c, repo, img, OCI_MANIFEST, SBOM)
    c.push_manifest(repo, sha256(art), art, OCI_MANIFEST)
    _, ms = _referrers(c, repo, img_d)
    assert [m["digest"] for m in ms] == [sha256(art)]
