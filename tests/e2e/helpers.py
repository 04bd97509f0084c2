"""Helpers shared by the client and crash end-to-end tests: the images built
by `fogport sandbox images`, skopeo, raw pushes and pulls over the registry API,
and a private containerd daemon."""
import hashlib
import json
import os
import signal
import subprocess
import time

import pytest
import requests

from conftest import FOGPORT

# The three services of the paper, as (repository, tag).
PAPER_IMAGES = [("iot_service", "1.0"), ("monitoring_service", "1.0"), ("web_service", "latest")]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ACCEPT_ALL = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


# ---------------------------------------------------------------- images

@pytest.fixture(scope="session")
def images(tmp_path_factory):
    """OCI layout with iot_service:1.0, monitoring_service:1.0 and
    web_service:latest, built once per session by `fogport sandbox images`."""
    out = tmp_path_factory.getbasetemp() / "images"
    r = subprocess.run([FOGPORT, "sandbox", "images", "--out", str(out / "layout")],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    assert r.returncode == 0, f"fogport sandbox images failed:\n{r.stdout}\n{r.stderr}"
    return OciLayout(out / "layout")


class OciLayout:
    """Read access to an OCI image layout directory."""

    def __init__(self, path):
        self.path = str(path)

    def index(self):
        with open(os.path.join(self.path, "index.json"), "rb") as f:
            return json.load(f)

    def descriptor(self, ref):
        """The index.json descriptor whose ref.name annotation is ref."""
        for d in self.index()["manifests"]:
            if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref:
                return d
        raise KeyError(f"{ref} not in {self.path}/index.json")

    def blob_path(self, digest):
        algo, hexd = digest.split(":", 1)
        return os.path.join(self.path, "blobs", algo, hexd)

    def blob(self, digest):
        with open(self.blob_path(digest), "rb") as f:
            return f.read()

    def ref(self, ref):
        return f"oci:{self.path}:{ref}"

    def image_blobs(self, manifest_digest):
        """Digests of everything a manifest (or index) needs, itself excluded."""
        m = json.loads(self.blob(manifest_digest))
        out = []
        if "manifests" in m:
            for d in m["manifests"]:
                out.append(d["digest"])
                out.extend(self.image_blobs(d["digest"]))
        else:
            out.append(m["config"]["digest"])
            out.extend(layer["digest"] for layer in m["layers"])
        return out


# ---------------------------------------------------------------- skopeo

def skopeo(*args, check=True, timeout=120):
    r = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True,
                       timeout=timeout)
    if check:
        assert r.returncode == 0, f"skopeo {' '.join(args)} -> {r.returncode}\n{r.stderr}"
    return r


def skopeo_push(layout, ref, registry, dest, *extra):
    """Copy layout:ref to the registry as dest ("repo:tag"); returns the
    digest skopeo reports for what it pushed."""
    digestfile = os.path.join(os.path.dirname(layout.path), f".digest-{os.getpid()}-{time.time_ns()}")
    skopeo("copy", "--quiet", "--dest-tls-verify=false", "--digestfile", digestfile, *extra,
           layout.ref(ref), f"docker://{registry.host}/{dest}")
    with open(digestfile) as f:
        digest = f.read().strip()
    os.unlink(digestfile)
    return digest


# ---------------------------------------------------------------- raw API

def get_manifest(registry, repo, ref, accept=ACCEPT_ALL, session=requests):
    return session.get(f"{registry.url}/v2/{repo}/manifests/{ref}", headers={"Accept": accept},
                       timeout=30)


def get_blob(registry, repo, digest, session=requests):
    return session.get(f"{registry.url}/v2/{repo}/blobs/{digest}", timeout=60)


def upload_blob(registry, repo, data, mode="monolithic", session=requests, chunk=1 << 20):
    """Push one blob; mode is "monolithic" (POST ?digest=), "single"
    (POST, then PUT with the body) or "chunked" (POST, PATCHes, PUT).
    Returns the digest; raises on any unexpected status."""
    digest = sha256(data)
    base = f"{registry.url}/v2/{repo}/blobs/uploads/"
    if mode == "monolithic":
        r = session.post(base, params={"digest": digest}, data=data,
                         headers={"Content-Type": "application/octet-stream"}, timeout=60)
        _expect(r, 201, "monolithic blob upload")
        return digest
    r = session.post(base, timeout=30)
    _expect(r, 202, "start upload")
    loc = _absolute(registry, r.headers["Location"])
    if mode == "chunked":
        off = 0
        while off < len(data):
            part = data[off:off + chunk]
            r = session.patch(loc, data=part, timeout=60, headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{off}-{off + len(part) - 1}"})
            _expect(r, 202, "PATCH chunk")
            loc = _absolute(registry, r.headers["Location"])
            off += len(part)
        body = b""
    else:
        body = data
    sep = "&" if "?" in loc else "?"
    r = session.put(f"{loc}{sep}digest={digest}", data=body,
                    headers={"Content-Type": "application/octet-stream"}, timeout=60)
    _expect(r, 201, "finish upload")
    return digest


def image_manifest(config, layers, media_type=OCI_MANIFEST):
    """Manifest bytes for a config blob and layer blobs (all bytes)."""
    cfg_type = OCI_CONFIG if media_type == OCI_MANIFEST else \
        "application/vnd.docker.container.image.v1+json"
    layer_type = OCI_LAYER if media_type == OCI_MANIFEST else \
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    m = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": cfg_type, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": layer_type, "digest": sha256(b), "size": len(b)} for b in layers],
    }
    return json.dumps(m, indent=2).encode()


def put_manifest(registry, repo, ref, body, media_type=OCI_MANIFEST, session=requests):
    return session.put(f"{registry.url}/v2/{repo}/manifests/{ref}", data=body,
                       headers={"Content-Type": media_type}, timeout=30)


def push_image(registry, repo, tag, config, layers, mode="monolithic", session=requests):
    """Push config + layers + manifest; returns (manifest digest, manifest bytes)."""
    for b in [config, *layers]:
        upload_blob(registry, repo, b, mode=mode, session=session)
    body = image_manifest(config, layers)
    r = put_manifest(registry, repo, tag, body, session=session)
    _expect(r, 201, f"PUT manifest {repo}:{tag}")
    assert r.headers.get("Docker-Content-Digest") == sha256(body), r.headers
    return sha256(body), body


def random_config(rnd, label):
    return json.dumps({"architecture": "amd64", "os": "linux",
                       "config": {"Labels": {"test": label, "nonce": str(rnd.random())}},
                       "rootfs": {"type": "layers", "diff_ids": []}}).encode()


def _absolute(registry, loc):
    return loc if loc.startswith("http") else registry.url + loc


def _expect(r, status, what):
    if r.status_code != status:
        raise AssertionError(f"{what}: {r.request.method} {r.url} -> {r.status_code} "
                             f"(expected {status}): {r.text[:500]}")


def fogport_ls(registry):
    r = registry.run("ls", "--registry", registry.url, check=False)
    assert r.returncode == 0, f"fogport ls -> {r.returncode}\n{r.stderr}"
    return r.stdout


def paper_ls_lines():
    return [json.dumps({"name": repo, "tags": [tag]}) for repo, tag in PAPER_IMAGES]


# ---------------------------------------------------------------- containerd

class Containerd:
    """A private containerd daemon with its own root, state and socket."""

    def __init__(self, base):
        self.base = str(base)
        self.root = os.path.join(self.base, "root")
        self.state = os.path.join(self.base, "state")
        self.sock = os.path.join(self.base, "containerd.sock")
        self.config = os.path.join(self.base, "config.toml")
        self.log_path = os.path.join(self.base, "containerd.log")
        self.proc = None

    def start(self, timeout=30):
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.state, exist_ok=True)
        with open(self.config, "w") as f:
            f.write(f'''version = 2
root = "{self.root}"
state = "{self.state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{self.sock}"

[ttrpc]
  address = "{self.sock}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{os.path.join(self.base, "opt")}"
''')
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["containerd", "--config", self.config, "--root", self.root, "--state", self.state,
             "--address", self.sock], stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"containerd exited {self.proc.returncode}:\n{self.log()}")
            if os.path.exists(self.sock):
                r = self.ctr("version", check=False)
                if r.returncode == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"containerd did not come up:\n{self.log()}")

    def ctr(self, *args, check=True, timeout=120):
        r = subprocess.run(["ctr", "-a", self.sock, *args], capture_output=True, text=True,
                           timeout=timeout)
        if check:
            assert r.returncode == 0, f"ctr {' '.join(args)} -> {r.returncode}\n{r.stderr}"
        return r

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        # Nothing it mounted may outlive it (pytest removes the directory later).
        for mnt in reversed(self.mounts()):
            subprocess.run(["umount", "-l", mnt], capture_output=True)

    def mounts(self):
        out = []
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mnt = line.split()[4]
                if mnt.startswith(self.base + "/"):
                    out.append(mnt)
        return out

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except FileNotFoundError:
            return ""
