"""The agent's images in the node's store (issue 5): an image an instance
runs is pinned against the fog's cache eviction ([storage] cache_max), and
is evicted like any other once no instance runs it; of a multi-platform
index only the node's platform is fetched.

A sandbox per test (a cloud and fog-1 with its agent). Needs root and
runc (skipped otherwise)."""
import io
import json
import os
import shutil
import tarfile

import pytest

from fedhelp import Sandbox, gz_layer, push_image, sha256, wait_for
from helpers import images  # noqa: F401 (fixture)
from test_agent import cli, create, delete, running, wait_state
from test_federation_cache import held

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"),
                                reason="the agent needs root and runc")

MiB = 1 << 20


def sandbox(tmp_path, images, **storage):
    s = Sandbox(tmp_path / "sb", fogs=1, edges=0).up()
    s.env = dict(os.environ, FOGPORT_CONFIG=s.client_json)
    try:
        s.push(images, "web_service:latest", s.cloud)
        if storage:
            fog = s["fog-1"]
            fog.stop()
            fog.set_config("storage", **storage)
            fog.start()
    except BaseException:
        s.down()
        raise
    return s


def test_running_image_is_pinned_against_eviction(tmp_path, images):
    """cache_max holds web_service (1.1 MiB) and not one more 1 MiB image:
    while a service runs web_service, the newer image pulled after it is
    the one evicted; once the service is deleted, web_service goes when the
    next image comes."""
    sb = sandbox(tmp_path, images, cache_max="1536K")
    try:
        fog = sb["fog-1"]
        m = fog.mark()
        create(sb, "pinned", "--image", "web_service:latest", "--node", "fog-1",
               "--entrypoint", "/bin/sh", "--cmd", "-c", "--cmd", "sleep 600",
               "--stop-grace", "0")
        i = wait_state(sb, "pinned", "fog-1", running)
        web = i["digest"]
        assert held(sb, fog, "web_service", "manifests", web)
        # another image pulled through the fog: over the limit
        layer = gz_layer(MiB)
        digest, _, _ = push_image(sb.session(sb.cloud, "filler", "pull,push"), sb.cloud,
                                  "filler", "1", [layer])
        assert sb.pull(fog, "filler:1", str(tmp_path / "filler")) == digest
        # web_service is the least recently used, but runs: the filler goes
        # (once idle for 10 s) and web_service stays
        fog.wait_log(r"event=evicted repo=filler ", since=m, timeout=40)
        assert not fog.lines(r"event=evicted repo=web_service ", since=m)
        assert held(sb, fog, "web_service", "manifests", web)
        assert wait_state(sb, "pinned", "fog-1", running)["restarts"] == 0

        # no instance runs it any more: it is cache like the rest, and the
        # least recently used when the next image comes
        m2 = fog.mark()
        delete(sb, "pinned")
        digest2, _, _ = push_image(sb.session(sb.cloud, "filler2", "pull,push"), sb.cloud,
                                   "filler2", "1", [gz_layer(MiB)])
        assert sb.pull(fog, "filler2:1", str(tmp_path / "filler2")) == digest2
        ev = fog.wait_log(r"event=evicted repo=web_service ", since=m2, timeout=40)
        assert web in ev[0], ev
        assert not held(sb, fog, "web_service", "manifests", web)
    finally:
        for sv in cli(sb, "service", "ls", "--json", check=False).get("json") or []:
            cli(sb, "service", "delete", sv["name"], check=False)
        sb.down()


OCI_INDEX = "application/vnd.oci.image.index.v1+json"
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


def put_index(s, node, repo, tag, children):
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children})
    r = s.put(f"{node.url}/v2/{repo}/manifests/{tag}", data=body,
              headers={"Content-Type": OCI_INDEX}, timeout=30)
    assert r.status_code == 201, (r.status_code, r.text)
    return sha256(body.encode())


def test_index_holds_only_the_nodes_platform(tmp_path, images):
    """An index of two platforms whose other platform's layer the cloud has
    lost: the fog's agent fetches only its own platform's manifest and
    blobs, and runs it. An index with no manifest for the node's platform
    is a clear error in `fogport ps --json`, `fogport events` and the node's
    log."""
    sb = sandbox(tmp_path, images)
    try:
        cloud, fog = sb.cloud, sb["fog-1"]
        s = sb.session(cloud, "web_service", "pull,push")
        r = s.get(f"{cloud.url}/v2/web_service/manifests/latest", timeout=30)
        assert r.status_code == 200
        host = {"mediaType": r.headers["Content-Type"].split(";")[0], "digest": sha256(r.content),
                "size": len(r.content), "platform": {"os": "linux", "architecture": HOST_ARCH}}
        layer = gz_layer(MiB)
        other_digest, other_body, _ = push_image(s, cloud, "web_service", "other", [layer])
        other = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "digest": other_digest, "size": len(other_body),
                 "platform": {"os": "linux", "architecture": "s390x"}}
        put_index(s, cloud, "web_service", "multi", [other, host])  # the other one first
        put_index(s, cloud, "web_service", "s390x", [other])
        # the cloud loses the other platform's layer: nobody can fetch it
        h = sha256(layer).split(":", 1)[1]
        os.remove(os.path.join(cloud.data_dir, "blobs", "sha256", h[:2], h))
        assert s.get(f"{cloud.url}/v2/web_service/blobs/sha256:{h}", timeout=30) \
            .status_code != 200

        m = fog.mark()
        create(sb, "multi", "--image", "web_service:multi", "--node", "fog-1",
               "--entrypoint", "/bin/sh", "--cmd", "-c", "--cmd", "sleep 600",
               "--stop-grace", "0")
        i = wait_state(sb, "multi", "fog-1", running)
        assert i["digest"] != host["digest"]  # the service runs the index
        assert i["restarts"] == 0 and not i["error"], i
        assert held(sb, fog, "web_service", "manifests", host["digest"])
        assert not held(sb, fog, "web_service", "manifests", other_digest)
        assert not fog.lines(rf"event=pulled kind=\S+ repo=web_service \S*{other_digest}",
                             since=m)
        assert not fog.lines(rf"event=pulled kind=blob repo=web_service digest=sha256:{h}",
                             since=m)

        # no manifest for this node: said in the instance's error
        create(sb, "nomatch", "--image", "web_service:s390x", "--node", "fog-1",
               "--entrypoint", "/bin/sh", "--cmd", "-c", "--cmd", "sleep 600")
        i = wait_state(sb, "nomatch", "fog-1", lambda i: i["error"])
        assert i["state"] in ("backoff", "pulling"), i
        assert f"no manifest for linux/{HOST_ARCH}" in i["error"], i
        assert "linux/s390x" in i["error"], i
        fog.wait_log(r"event=service_deploy_failed service=nomatch .*no manifest for", since=m)
        # and in the cloud's events, with the state it put the instance in
        ev = [e for e in json.loads(cli(sb, "events", "--json")["out"])
              if e["service"] == "nomatch" and e["event"] == "backoff"]
        assert ev and f"no manifest for linux/{HOST_ARCH}" in ev[0].get("error", ""), ev
        text = cli(sb, "events")["out"]
        assert any("nomatch" in line and "no manifest for" in line
                   for line in text.splitlines()), text
    finally:
        for sv in cli(sb, "service", "ls", "--json", check=False).get("json") or []:
            cli(sb, "service", "delete", sv["name"], check=False)
        sb.down()


def tar_layer(name, data):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_replacement_waits_for_its_image(tmp_path, images):
    """A service replaced by a definition whose image cannot be fetched
    (the cloud lost its layer) keeps running as it was; the failure is in
    the instance and the log, retried with backoff; withdrawn, it leaves no
    trace; once the layer is back the new definition replaces it."""
    sb = sandbox(tmp_path, images)
    try:
        cloud, fog = sb.cloud, sb["fog-1"]
        s = sb.session(cloud, "web_service", "pull,push")
        # web_service with one more layer, which the cloud then loses: an
        # image it lists but cannot serve
        r = s.get(f"{cloud.url}/v2/web_service/manifests/latest", timeout=30)
        base = [s.get(f"{cloud.url}/v2/web_service/blobs/{d['digest']}", timeout=30).content
                for d in r.json()["layers"]]
        layer = tar_layer("etc/new-version", b"2\n")
        push_image(s, cloud, "web_service", "broken", base + [layer])
        h = sha256(layer).split(":", 1)[1]
        path = os.path.join(cloud.data_dir, "blobs", "sha256", h[:2], h)
        os.rename(path, path + ".away")

        run = ["--node", "fog-1", "--entrypoint", "/bin/sh", "--cmd", "-c", "--cmd",
               "sleep 600", "--stop-grace", "0"]
        create(sb, "swap", "--image", "web_service:latest", *run)
        old = wait_state(sb, "swap", "fog-1", running)
        m = fog.mark()
        create(sb, "swap", "--image", "web_service:broken", *run)
        fails = fog.wait_log(r"event=service_replace_failed service=swap ", since=m,
                             timeout=30, count=2)
        assert "retry_s=1 " in fails[0] and "retry_s=2 " in fails[1], fails
        i = wait_state(sb, "swap", "fog-1",
                       lambda i: "new definition not running yet" in i["error"])
        assert i["state"] == "running" and i["pid"] == old["pid"], i
        assert i["digest"] == old["digest"], i
        assert not fog.lines(r"event=service_removed service=swap", since=m)
        # the cloud's events say so too
        ev = wait_for(lambda: [e for e in json.loads(cli(sb, "events", "--json")["out"])
                               if e["service"] == "swap" and e["event"] == "error"], 20, 0.5)
        assert ev and ev[0]["state"] == "running", ev
        assert "new definition not running yet" in ev[0]["error"], ev

        # the new definition withdrawn: the old one runs on, its error gone
        create(sb, "swap", "--image", "web_service:latest", *run)
        i = wait_state(sb, "swap", "fog-1", lambda i: not i["error"])
        assert i["state"] == "running" and i["pid"] == old["pid"], i

        # asked for again, and the layer is back: the next try replaces the
        # old instance
        m = fog.mark()
        create(sb, "swap", "--image", "web_service:broken", *run)
        fog.wait_log(r"event=service_replace_failed service=swap ", since=m, timeout=30)
        os.rename(path + ".away", path)
        fog.wait_log(r"event=service_started service=swap ", since=m, timeout=90)
        i = wait_state(sb, "swap", "fog-1", lambda i: running(i) and i["pid"] != old["pid"])
        assert i["digest"] != old["digest"] and not i["error"], i
        assert len(fog.lines(r"event=service_removed service=swap", since=m)) == 1
    finally:
        for sv in cli(sb, "service", "ls", "--json", check=False).get("json") or []:
            cli(sb, "service", "delete", sv["name"], check=False)
        sb.down()
