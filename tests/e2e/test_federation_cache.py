"""Federation, cache eviction (issue 4): a fog keeps what it pulled through
only up to [storage] cache_max; past it, the least recently used pulled-
through image goes (manifest, tags and the blobs nothing else needs), in
the background, and comes back through the same pull-through path when it
is asked for again. What was pushed to the fog, in its own namespace or
not, is never evicted."""
import os
import re

import requests

from fedhelp import Sandbox, check_log_clean, gz_layer, layout_blobs_ok, push_image, sha256

MiB = 1 << 20


def held(sb, node, repo, kind, ref):
    """Does node hold repo's manifest or blob (kind) ref itself? A peer's
    request is answered from the store, never forwarded."""
    r = requests.get(f"{node.url}/v2/{repo}/{kind}/{ref}", verify=sb.ca, timeout=15, headers={
        "Authorization": "Bearer " + sb.token(node.id, repo), "Fogport-Peer": "1",
        "Accept": "*/*"})
    assert r.status_code in (200, 404), (repo, ref, r.status_code, r.text[:200])
    return r.status_code == 200


def image_held(sb, node, repo, image):
    """(tag, manifest, layer, config) held?"""
    digest, layer, config = image
    return (held(sb, node, repo, "manifests", "1"), held(sb, node, repo, "manifests", digest),
            held(sb, node, repo, "blobs", layer), held(sb, node, repo, "blobs", config))


def test_least_recently_used_image_evicted(tmp_path):
    """cache_max holds two of three 1 MiB images: after pulling a, b and c
    through the fog, a (the least recently used) is evicted, b and c stay;
    a pulled again comes through again, and then b is the one to go. The
    fog's own images and one pushed to it stay throughout; fsck is clean."""
    sb = Sandbox(tmp_path / "sb", fogs=1, edges=0).up()
    try:
        cloud, fog = sb.cloud, sb["fog-1"]
        images = {}
        for name in ("cache_a", "cache_b", "cache_c"):
            layer = gz_layer(MiB)
            digest, _, config = push_image(sb.session(cloud, name, "pull,push"), cloud, name, "1",
                                           [layer], label=name)
            images[name] = (digest, sha256(layer), sha256(config))
        fog.stop()
        fog.set_config("storage", cache_max="2560K")
        m = fog.mark()
        fog.start()
        # pushed to the fog: never cache
        pushed = {}
        for repo in ("fog-1/own", "local_app"):
            layer = gz_layer(MiB)
            digest, _, _ = push_image(sb.session(fog, repo, "pull,push"), fog, repo, "1", [layer])
            pushed[repo] = (digest, sha256(layer))

        def pull(name):
            out = str(tmp_path / f"{name}-{len(os.listdir(tmp_path))}")
            assert sb.pull(fog, f"{name}:1", out) == images[name][0]
            assert layout_blobs_ok(out) == 3

        for name in ("cache_a", "cache_b", "cache_c"):
            pull(name)
            fog.wait_log(rf"event=pulled kind=blob repo={name} digest={images[name][1]} ", since=m)
        # a is the least recently used (and idle for 10 s): it goes
        ev = fog.wait_log(r"event=evicted repo=cache_a ", since=m, timeout=30)
        assert images["cache_a"][0] in ev[0], ev
        assert image_held(sb, fog, "cache_a", images["cache_a"]) == (False,) * 4
        for name in ("cache_b", "cache_c"):
            assert image_held(sb, fog, name, images[name]) == (True,) * 4, name
        assert len(fog.lines(r"event=evicted repo=", since=m)) == 1, fog.lines(r"event=evicted")

        # asked again: pulled through again, and now b is the oldest
        m2 = fog.mark()
        pull("cache_a")
        fog.wait_log(rf"event=pulled kind=manifest repo=cache_a ref=1 digest={images['cache_a'][0]}",
                     since=m2)
        fog.wait_log(rf"event=pulled kind=blob repo=cache_a digest={images['cache_a'][1]} ",
                     since=m2)
        fog.wait_log(r"event=evicted repo=cache_b ", since=m2, timeout=30)
        assert image_held(sb, fog, "cache_b", images["cache_b"]) == (False,) * 4
        for name in ("cache_a", "cache_c"):
            assert image_held(sb, fog, name, images[name]) == (True,) * 4, name
        for repo, (d, layer) in pushed.items():
            assert held(sb, fog, repo, "manifests", d) and held(sb, fog, repo, "blobs", layer), repo
        evicted = fog.lines(r"event=evicted", since=m)
        assert all(re.search(r"repo=cache_[ab] ", line) for line in evicted), evicted

        assert fog.stop() == 0, fog.log(m)[-3000:]
        r = fog.fsck()
        assert r.returncode == 0, f"fsck after eviction:\n{r.stdout}\n{r.stderr}"
        check_log_clean(sb)
    finally:
        sb.down()
