"""The agent's images in the node's store (issue 5): an image an instance
runs is pinned against the fog's cache eviction ([storage] cache_max), and
is evicted like any other once no instance runs it.

A sandbox per test (a cloud and fog-1 with its agent). Needs root and
runc (skipped otherwise)."""
import os
import shutil

import pytest

from fedhelp import Sandbox, gz_layer, push_image
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
