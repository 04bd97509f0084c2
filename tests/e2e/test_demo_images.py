"""`fogport sandbox images`: the paper's three service images, built in C
(the one definition of what they hold), read back by real clients (umoci,
skopeo). Two builds give the same bytes, the layers hold only relative paths
owned by root with a fixed time, and busybox is a static executable."""
import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile

import pytest

from conftest import FOGPORT
from helpers import OciLayout, PAPER_IMAGES, skopeo

ENV = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
STAMP = 1704067200  # 2024-01-01T00:00:00Z


def build(out, *extra):
    return subprocess.run([FOGPORT, "sandbox", "images", "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=120, env=ENV)


def tree(path):
    files = {}
    for base, _, names in os.walk(path):
        for n in names:
            p = os.path.join(base, n)
            with open(p, "rb") as f:
                files[os.path.relpath(p, path)] = f.read()
    return files


def test_reproducible(tmp_path):
    a, b = build(tmp_path / "a"), build(tmp_path / "b")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    # the printed manifest digests, and every byte of the layouts, agree
    assert a.stdout == b.stdout and len(a.stdout.splitlines()) == 3
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    layout = OciLayout(tmp_path / "a")
    for line in a.stdout.splitlines():
        ref, digest = line.split()
        assert layout.descriptor(ref)["digest"] == digest
    # a second build over the first one changes nothing either
    again = build(tmp_path / "a")
    assert again.stdout == a.stdout and tree(tmp_path / "a") == tree(tmp_path / "b")


def test_layers(tmp_path):
    assert build(tmp_path / "l").returncode == 0
    layout = OciLayout(tmp_path / "l")
    bases = set()
    for repo, tag in PAPER_IMAGES:
        m = json.loads(layout.blob(layout.descriptor(f"{repo}:{tag}")["digest"]))
        assert len(m["layers"]) == 2
        bases.add(m["layers"][0]["digest"])
        cfg = json.loads(layout.blob(m["config"]["digest"]))
        assert cfg["created"] == "2024-01-01T00:00:00Z"
        diff_ids = []
        for d in m["layers"]:
            assert d["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
            raw = layout.blob(d["digest"])
            with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as t:
                for e in t.getmembers():
                    assert not e.name.startswith("/") and ".." not in e.name.split("/"), e.name
                    assert (e.uid, e.gid, e.mtime) == (0, 0, STAMP), e.name
                    assert e.isdir() or e.isfile() or e.issym(), e.name
                    if e.issym():
                        assert e.linkname == "busybox", (e.name, e.linkname)
                    if e.name == "bin/busybox":
                        assert e.isfile() and e.mode & 0o111
            diff_ids.append("sha256:" + hashlib.sha256(gzip.decompress(raw)).hexdigest())
        assert cfg["rootfs"] == {"type": "layers", "diff_ids": diff_ids}
    assert len(bases) == 1  # one busybox base, shared (each fog fetches it once)


def test_umoci_and_skopeo_read_them(tmp_path):
    """A real client unpacks the image and busybox runs from it."""
    assert build(tmp_path / "u").returncode == 0
    bundle = tmp_path / "bundle"
    rootless = [] if os.geteuid() == 0 else ["--rootless"]
    r = subprocess.run(["umoci", "unpack", *rootless, "--image",
                        f"{tmp_path / 'u'}:web_service:latest", str(bundle)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rootfs = bundle / "rootfs"
    assert (rootfs / "www" / "index.html").read_text().count("<h1>web_service</h1>") == 1
    assert os.readlink(rootfs / "bin" / "httpd") == "busybox"
    # static: it runs with nothing of the host's but the kernel
    out = subprocess.run([str(rootfs / "bin" / "busybox"), "echo", "ran"], capture_output=True,
                         text=True)
    assert out.stdout == "ran\n"
    spec = json.loads((bundle / "config.json").read_text())
    assert spec["process"]["args"] == ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
    assert spec["process"]["cwd"] == "/www"
    info = json.loads(skopeo("inspect", f"oci:{tmp_path / 'u'}:iot_service:1.0").stdout)
    assert info["Labels"] == {"org.opencontainers.image.title": "iot_service"}
    assert "INTERVAL=2" in info["Env"] and info["Architecture"] in ("amd64", "arm64")


def test_dynamic_busybox_refused(tmp_path):
    """A dynamically linked binary would not run alone in an image."""
    dyn = "/bin/ls"
    if not os.path.exists(dyn):
        pytest.skip("no /bin/ls")
    r = build(tmp_path / "x", "--busybox", dyn)
    assert r.returncode != 0 and "dynamically linked" in r.stderr, r.stderr
    assert not (tmp_path / "x").exists()
