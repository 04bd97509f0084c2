"""Federation, hedged requests (issue 4): a holder that has not answered
within [federation] hedge_after is not waited for; the same request goes to
the next holder too, the first to deliver wins, and what it delivers is
still checked by digest.

A fog is given a slow peer, ordered first: it accepts every request for
content at once and answers rightly, but only after DELAY seconds. The fog's
own patience (peer_timeout) is longer than that, so without hedging every
request would wait for it."""
import os
import re
import time

from fedhelp import (OCI_MANIFEST, EvilPeer, Sandbox, check_log_clean, gz_layer, layout_blobs_ok,
                     push_image, sha256)

DELAY = 8.0  # the slow peer's silence before each answer
DOWN_FOR_S = 10  # a slow (or failing) peer is skipped this long (src/federation/federation.c)


def content_requests(peer):
    """What the peer was asked, its /v2/ pings (round-trip times) aside."""
    return [r for r in peer.requests if r[1] != "/v2/"]


def test_slow_peer_is_hedged(tmp_path):
    """Repository slow/app belongs to the slow peer (its id is "slow") and the
    cloud holds a copy: a blob and then a skopeo pull of slow/app:1 from the
    fog come from the cloud well before the slow peer would have answered,
    every byte right; the slow peer was asked first each time; after losing
    it is skipped for a while; the store stays clean."""
    sb = Sandbox(tmp_path / "sb", fogs=1, edges=0).up()
    slow = None
    try:
        cloud, fog = sb.cloud, sb["fog-1"]
        repo = "slow/app"
        layers = [gz_layer(400_000), gz_layer(50_000)]
        digest, body, config = push_image(sb.session(cloud, repo, "pull,push"), cloud, repo, "1",
                                          layers, label="slow peer's")
        blobs = {sha256(config): config, **{sha256(b): b for b in layers}}
        content = {f"/v2/{repo}/manifests/1": (OCI_MANIFEST, body),
                   f"/v2/{repo}/manifests/{digest}": (OCI_MANIFEST, body)}
        for d, data in blobs.items():
            content[f"/v2/{repo}/blobs/{d}"] = ("application/octet-stream", data)
        slow = EvilPeer(sb, {}, delay=DELAY, content=content).start()
        fog.stop()
        fog.set_federation(peers=f"slow={slow.url}", peer_order_config="true",
                           peer_timeout="30s", hedge_after="500ms")
        m = fog.mark()
        fog.start()
        s = sb.session(fog, repo)

        # a blob by digest: the owner (slow) first, the parent 0.5 s later
        big = sha256(layers[0])
        t0 = time.time()
        r = s.get(f"{fog.url}/v2/{repo}/blobs/{big}", timeout=60)
        took = time.time() - t0
        assert r.status_code == 200 and r.content == layers[0], (r.status_code, len(r.content))
        assert took < DELAY / 2, f"the blob took {took:.1f}s: the slow peer was waited for"
        fog.wait_log(rf"event=hedged source=slow next=parent after_ms=500\b", since=m)
        fog.wait_log(rf"event=pulled kind=blob repo={repo} digest={big} .*source=parent\b",
                     since=m)
        fog.wait_log(r"event=peer_slow source=slow\b", since=m, timeout=DELAY + 5)
        asked = slow.asked("HEAD", big) + slow.asked("GET", big)
        assert asked and all(h.get("Fogport-Peer") == "1" for _, _, h in asked), slow.requests

        # skipped while it is marked slow: the next blob goes to the parent
        # at once
        small = sha256(layers[1])
        m2 = fog.mark()
        n_asked = len(content_requests(slow))
        r = s.get(f"{fog.url}/v2/{repo}/blobs/{small}", timeout=60)
        assert r.status_code == 200 and r.content == layers[1]
        assert len(content_requests(slow)) == n_asked, content_requests(slow)[n_asked:]
        assert not fog.lines(r"event=hedged", since=m2)

        # once it is asked again: skopeo pulls the image, its manifest
        # (by tag, from the owner first) hedged too
        time.sleep(DOWN_FOR_S + 0.5)
        m3 = fog.mark()
        t0 = time.time()
        out = str(tmp_path / "pulled")
        assert sb.pull(fog, f"{repo}:1", out) == digest
        took = time.time() - t0
        assert layout_blobs_ok(out) == len(blobs) + 1
        assert took < DELAY / 2, f"the pull took {took:.1f}s: the slow peer was waited for"
        fog.wait_log(r"event=hedged source=slow next=parent after_ms=500\b", since=m3)
        fog.wait_log(rf"event=pulled kind=manifest repo={repo} ref=1 digest={digest} "
                     rf"source=parent\b", since=m3)
        fog.wait_log(rf"event=pulled kind=blob repo={repo} digest={sha256(config)} "
                     rf".*source=parent\b", since=m3)
        assert any(m == "GET" and p == f"/v2/{repo}/manifests/1"
                   for m, p, _ in content_requests(slow)), slow.requests
        assert not fog.lines(r"event=pulled .*source=slow", since=m)
        # the slow peer's answers came too late to be used, and nothing broke
        assert not fog.lines(r"event=(pull|fetch)_(rejected|failed)", since=m), fog.log(m)

        time.sleep(1.5)  # let the cancelled attempts end
        assert fog.stop() == 0, fog.log(m)[-3000:]
        r = fog.fsck()
        assert r.returncode == 0, f"fsck after hedged pulls:\n{r.stdout}\n{r.stderr}"
        check_log_clean(sb)
        # every hedge line names a slow holder and the next one
        for line in fog.lines(r"event=hedged", since=m):
            assert re.search(r"source=slow next=parent after_ms=500\b", line), line
    finally:
        if slow:
            slow.stop()
        sb.down()


def test_hedge_disabled(tmp_path):
    """hedge_after = 0: the fog waits for the slow peer (here: until its
    peer_timeout of 2 s ends the silence), then asks the parent; the content
    is right either way."""
    sb = Sandbox(tmp_path / "sb", fogs=1, edges=0).up()
    slow = None
    try:
        cloud, fog = sb.cloud, sb["fog-1"]
        repo = "slow/nohedge"
        layer = os.urandom(5000)
        push_image(sb.session(cloud, repo, "pull,push"), cloud, repo, "1", [layer])
        d = sha256(layer)
        slow = EvilPeer(sb, {}, delay=DELAY, content={
            f"/v2/{repo}/blobs/{d}": ("application/octet-stream", layer)}).start()
        fog.stop()
        fog.set_federation(peers=f"slow={slow.url}", peer_order_config="true",
                           peer_timeout="2s", hedge_after="0")
        m = fog.mark()
        fog.start()
        t0 = time.time()
        r = sb.session(fog, repo).get(f"{fog.url}/v2/{repo}/blobs/{d}", timeout=60)
        took = time.time() - t0
        assert r.status_code == 200 and r.content == layer
        assert took >= 1.5, f"{took:.1f}s: the slow peer was not waited for"
        fog.wait_log(rf"event=pulled kind=blob repo={repo} digest={d} .*source=parent\b", since=m)
        assert not fog.lines(r"event=hedged", since=m)
        assert fog.stop() == 0, fog.log(m)[-3000:]
        check_log_clean(sb)
    finally:
        if slow:
            slow.stop()
        sb.down()


def test_paused_peer_does_not_hold_heartbeats(tmp_path):
    """A fog measures its peers' round-trip times on a thread of its own: a
    peer that stops answering (SIGSTOP) never delays the fog's heartbeats,
    so the cloud keeps seeing it healthy (suspect would come after 3 s of
    silence, and dead after 6 s would hand its always-on services over)."""
    import signal
    import requests
    sb = Sandbox(tmp_path / "sb", fogs=2, edges=0).up()
    try:
        fog1, fog2 = sb["fog-1"], sb["fog-2"]
        for fog in (fog1, fog2):
            fog.stop()
            fog.set_federation(peer_timeout="15s")
            fog.set_config("log", level="debug")  # event=peer_rtt
            fog.start()
        # fog-1 knows fog-2 as a peer (it measured it)
        fog1.wait_log(r"event=peer_rtt peer=fog-2", timeout=30)
        fog2.send(signal.SIGSTOP)
        try:
            healths = []
            deadline = time.time() + 25  # past two peer refreshes and probes
            while time.time() < deadline:
                r = requests.get(sb.cloud.url + "/api/v1/nodes", auth=sb.admin, verify=sb.ca,
                                 timeout=10)
                nodes = {n["id"]: n for n in r.json()["nodes"]}
                healths.append(nodes["fog-1"].get("health"))
                time.sleep(0.5)
            assert set(healths) == {"healthy"}, healths
            assert nodes["fog-2"].get("health") in ("suspect", "dead"), nodes["fog-2"]
        finally:
            fog2.send(signal.SIGCONT)
    finally:
        sb.down()
