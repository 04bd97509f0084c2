"""End-to-end tests with real clients: skopeo, containerd's ctr and
`fogport ls`, against a running `fogport serve` and the paper's three
services built by scripts/build-images."""
import filecmp
import json
import os
import shutil

import pytest
import requests

from conftest import have
from helpers import (ACCEPT_ALL, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, PAPER_IMAGES,
                     Containerd, OciLayout, fogport_ls, get_blob, get_manifest, paper_ls_lines,
                     sha256, sha256_file, skopeo, skopeo_push)
from helpers import images  # noqa: F401,F811  (the session fixture)

pytestmark = pytest.mark.skipif(not have("skopeo"), reason="skopeo is not installed")


def push_paper(registry, images):
    """Push the three services; returns {repo: digest skopeo pushed}."""
    return {repo: skopeo_push(images, f"{repo}:{tag}", registry, f"{repo}:{tag}")
            for repo, tag in PAPER_IMAGES}


def docker_ref(registry, ref):
    return f"docker://{registry.host}/{ref}"


def list_tags(registry, repo):
    r = skopeo("list-tags", "--tls-verify=false", docker_ref(registry, repo))
    out = json.loads(r.stdout)
    assert out["Repository"].endswith(repo), out
    return out["Tags"]


def assert_same_blobs(src, dst, digests):
    for d in digests:
        assert os.path.exists(dst.blob_path(d)), f"{d} missing from {dst.path}"
        assert filecmp.cmp(src.blob_path(d), dst.blob_path(d), shallow=False), \
            f"{d} differs between {src.path} and {dst.path}"
        assert sha256_file(dst.blob_path(d)) == d


@pytest.mark.parametrize("repo,tag", PAPER_IMAGES)
def test_push_and_pull_back_byte_identical(registry, images, tmp_path, repo, tag):
    src = images.descriptor(f"{repo}:{tag}")
    manifest = images.blob(src["digest"])
    pushed = skopeo_push(images, f"{repo}:{tag}", registry, f"{repo}:{tag}",
                         "--preserve-digests")
    assert pushed == src["digest"]

    # what the registry serves is the layout's manifest, byte for byte
    raw = skopeo("inspect", "--raw", "--tls-verify=false", docker_ref(registry, f"{repo}:{tag}"))
    assert raw.stdout.encode() == manifest
    r = get_manifest(registry, repo, tag)
    assert r.status_code == 200
    assert r.content == manifest
    assert r.headers["Docker-Content-Digest"] == src["digest"]
    assert r.headers["Content-Type"] == OCI_MANIFEST
    r = get_manifest(registry, repo, src["digest"])
    assert r.status_code == 200 and r.content == manifest

    # pull back into a fresh OCI layout: same manifest digest, same blobs
    out = OciLayout(tmp_path / "back")
    skopeo("copy", "--quiet", "--src-tls-verify=false", "--preserve-digests",
           docker_ref(registry, f"{repo}:{tag}"), out.ref(f"{repo}:{tag}"))
    assert out.descriptor(f"{repo}:{tag}")["digest"] == src["digest"]
    assert_same_blobs(images, out, [src["digest"], *images.image_blobs(src["digest"])])

    # and into a dir: layout (files named by the bare hex digest)
    d = tmp_path / "dir"
    skopeo("copy", "--quiet", "--src-tls-verify=false", "--preserve-digests",
           docker_ref(registry, f"{repo}:{tag}"), f"dir:{d}")
    assert (d / "manifest.json").read_bytes() == manifest
    for digest in images.image_blobs(src["digest"]):
        got = (d / digest.split(":", 1)[1]).read_bytes()
        assert got == images.blob(digest), f"{digest} differs after dir: copy"


def test_inspect_config_and_tags(registry, images):
    digests = push_paper(registry, images)
    web = images.descriptor("web_service:latest")
    info = json.loads(skopeo("inspect", "--tls-verify=false",
                             docker_ref(registry, "web_service:latest")).stdout)
    assert info["Digest"] == web["digest"] == digests["web_service"]
    assert info["RepoTags"] == ["latest"]
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert info["Labels"] == {"org.opencontainers.image.title": "web_service"}
    assert "PATH=/usr/sbin:/usr/bin:/sbin:/bin" in info["Env"]
    assert len(info["Layers"]) == 2

    manifest = json.loads(images.blob(web["digest"]))
    raw_cfg = skopeo("inspect", "--config", "--raw", "--tls-verify=false",
                     docker_ref(registry, "web_service:latest")).stdout.encode()
    assert raw_cfg == images.blob(manifest["config"]["digest"])
    cfg = json.loads(raw_cfg)
    assert cfg["config"]["Entrypoint"] == ["/bin/busybox"]
    assert cfg["config"]["Cmd"] == ["httpd", "-f", "-p", "8080", "-h", "/www"]
    assert cfg["config"]["ExposedPorts"] == {"8080/tcp": {}}

    iot = json.loads(skopeo("inspect", "--tls-verify=false",
                            docker_ref(registry, "iot_service:1.0")).stdout)
    assert iot["Digest"] == images.descriptor("iot_service:1.0")["digest"]
    assert iot["RepoTags"] == ["1.0"]
    assert "INTERVAL=2" in iot["Env"]


def test_list_tags_and_extra_tag(registry, images):
    digests = push_paper(registry, images)
    for repo, tag in PAPER_IMAGES:
        assert list_tags(registry, repo) == [tag]

    # a second tag for the same manifest, copied registry to registry
    skopeo("copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
           docker_ref(registry, "web_service:latest"), docker_ref(registry, "web_service:v2"))
    assert sorted(list_tags(registry, "web_service")) == ["latest", "v2"]
    r = get_manifest(registry, "web_service", "v2")
    assert r.status_code == 200
    assert r.headers["Docker-Content-Digest"] == digests["web_service"]
    assert r.content == images.blob(digests["web_service"])
    # the other repositories did not change
    assert list_tags(registry, "iot_service") == ["1.0"]
    assert list_tags(registry, "monitoring_service") == ["1.0"]


def test_delete_by_tag(registry, images):
    iot = skopeo_push(images, "iot_service:1.0", registry, "iot_service:1.0")
    other = skopeo_push(images, "monitoring_service:1.0", registry, "iot_service:other")
    assert iot != other
    assert sorted(list_tags(registry, "iot_service")) == ["1.0", "other"]

    skopeo("delete", "--tls-verify=false", docker_ref(registry, "iot_service:1.0"))

    r = get_manifest(registry, "iot_service", iot)
    assert r.status_code == 404, (r.status_code, r.text)
    r = get_manifest(registry, "iot_service", "1.0")
    assert r.status_code == 404, (r.status_code, r.text)
    assert list_tags(registry, "iot_service") == ["other"]
    r = get_manifest(registry, "iot_service", "other")
    assert r.status_code == 200
    assert r.content == images.blob(other)
    assert sha256(r.content) == other


def test_fogport_ls_paper_output(registry, images):
    push_paper(registry, images)
    out = fogport_ls(registry)
    assert out.splitlines() == paper_ls_lines()
    assert out == "".join(line + "\n" for line in paper_ls_lines())
    assert paper_ls_lines()[0] == '{"name": "iot_service", "tags": ["1.0"]}'


def test_containerd_pull_plain_http(registry, images, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("a private containerd daemon needs root")
    if not (have("containerd") and have("ctr")):
        pytest.skip("containerd/ctr not installed")
    pushed = skopeo_push(images, "web_service:latest", registry, "web_service:latest")
    ref = f"{registry.host}/web_service:latest"

    ctrd = Containerd(tmp_path / "ctrd").start()
    try:
        r = ctrd.ctr("images", "pull", "--plain-http", ref, check=False, timeout=180)
        assert r.returncode == 0, f"ctr pull failed:\n{r.stdout}\n{r.stderr}\n{ctrd.log()}"
        ls = ctrd.ctr("images", "ls").stdout.splitlines()
        rows = [line.split() for line in ls[1:]]
        row = [x for x in rows if x and x[0] == ref]
        assert row, f"{ref} not in ctr images ls:\n" + "\n".join(ls)
        assert row[0][2] == pushed, f"ctr has {row[0][2]}, skopeo pushed {pushed}"

        # every blob of the image is in containerd's content store, intact
        content = ctrd.ctr("content", "ls", "-q").stdout.split()
        for d in [pushed, *images.image_blobs(pushed)]:
            assert d in content, f"{d} not fetched by containerd"
        check = ctrd.ctr("images", "check").stdout
        assert "complete" in check and ref in check, check
    finally:
        ctrd.stop()


def make_index_layout(images, path):
    """A layout whose tag `multi` is an OCI index of web_service (amd64) and
    iot_service (arm64, nominally); returns (layout, index digest)."""
    shutil.copytree(os.path.join(images.path, "blobs"), os.path.join(path, "blobs"))
    shutil.copy(os.path.join(images.path, "oci-layout"), os.path.join(path, "oci-layout"))
    web = images.descriptor("web_service:latest")
    iot = images.descriptor("iot_service:1.0")
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": web["digest"], "size": web["size"],
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": iot["digest"], "size": iot["size"],
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        ],
        "annotations": {"org.opencontainers.image.description": "fogport services"},
    }
    body = json.dumps(index, indent=3).encode()
    digest = sha256(body)
    layout = OciLayout(path)
    with open(layout.blob_path(digest), "wb") as f:
        f.write(body)
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": OCI_INDEX, "digest": digest, "size": len(body),
            "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}, f)
    return layout, digest


def test_image_index_roundtrip(registry, images, tmp_path):
    src, idx = make_index_layout(images, tmp_path / "multi")
    body = src.blob(idx)
    pushed = skopeo_push(src, "multi", registry, "services:multi", "--all", "--preserve-digests")
    assert pushed == idx

    r = get_manifest(registry, "services", "multi")
    assert r.status_code == 200
    assert r.content == body
    assert r.headers["Content-Type"] == OCI_INDEX
    assert r.headers["Docker-Content-Digest"] == idx
    for child in json.loads(body)["manifests"]:
        c = get_manifest(registry, "services", child["digest"])
        assert c.status_code == 200 and c.content == src.blob(child["digest"])
    raw = skopeo("inspect", "--raw", "--tls-verify=false",
                 docker_ref(registry, "services:multi")).stdout.encode()
    assert raw == body

    out = OciLayout(tmp_path / "back")
    skopeo("copy", "--quiet", "--all", "--preserve-digests", "--src-tls-verify=false",
           docker_ref(registry, "services:multi"), out.ref("multi"))
    desc = out.descriptor("multi")
    assert desc["digest"] == idx and desc["mediaType"] == OCI_INDEX
    assert_same_blobs(src, out, [idx, *src.image_blobs(idx)])


def test_docker_schema2_push(registry, images):
    src = json.loads(images.blob(images.descriptor("web_service:latest")["digest"]))
    digest = skopeo_push(images, "web_service:latest", registry, "web_docker:latest",
                         "--format", "v2s2")
    r = get_manifest(registry, "web_docker", "latest")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == DOCKER_MANIFEST
    assert r.headers["Docker-Content-Digest"] == digest
    assert sha256(r.content) == digest
    m = json.loads(r.content)
    assert m["mediaType"] == DOCKER_MANIFEST and m["schemaVersion"] == 2
    assert m["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"

    h = requests.head(f"{registry.url}/v2/web_docker/manifests/latest",
                      headers={"Accept": ACCEPT_ALL}, timeout=10)
    assert h.status_code == 200
    assert h.headers["Docker-Content-Digest"] == digest
    assert h.headers["Content-Type"] == DOCKER_MANIFEST
    assert int(h.headers["Content-Length"]) == len(r.content)

    info = json.loads(skopeo("inspect", "--tls-verify=false",
                             docker_ref(registry, "web_docker:latest")).stdout)
    assert info["Digest"] == digest
    raw = skopeo("inspect", "--raw", "--tls-verify=false",
                 docker_ref(registry, "web_docker:latest")).stdout.encode()
    assert raw == r.content

    # the conversion changes media types only: the layers are the same bytes
    assert [x["digest"] for x in m["layers"]] == [x["digest"] for x in src["layers"]]
    for layer in m["layers"]:
        b = get_blob(registry, "web_docker", layer["digest"])
        assert b.status_code == 200 and b.content == images.blob(layer["digest"])
