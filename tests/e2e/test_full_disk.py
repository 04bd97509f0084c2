"""A full disk: the registry's data directory is a small tmpfs that uploads
fill up. Every refused upload must answer an error (507 or 500, never a
success), nothing half-written may be recorded (fsck clean), everything
stored before stays intact, and once space is freed uploads work again."""
import hashlib
import os
import subprocess

import pytest
import requests

from conftest import Registry


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_full_disk_loses_nothing(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], check=True)
    r = Registry(mnt / "data", log_path=str(tmp_path / "serve.log"))
    try:
        r.start()
        kept = {}
        for i in range(3):
            blob = os.urandom(256 * 1024)
            d = sha(blob)
            assert requests.post(f"{r.url}/v2/keep/blobs/uploads/?digest={d}", data=blob,
                                 headers={"Content-Type": "application/octet-stream"}
                                 ).status_code == 201
            kept[d] = blob
        # a tagged manifest references them: gc must keep them
        import json
        ds = list(kept)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/octet-stream", "digest": ds[0],
                       "size": len(kept[ds[0]])},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d,
                        "size": len(kept[d])} for d in ds[1:]]}).encode()
        assert requests.put(f"{r.url}/v2/keep/manifests/v1", data=manifest, headers={
            "Content-Type": "application/vnd.oci.image.manifest.v1+json"}).status_code == 201
        # fill the disk: monolithic and chunked uploads until they are refused
        refused = []
        for i in range(40):
            blob = os.urandom(512 * 1024)
            if i % 2:
                resp = requests.post(f"{r.url}/v2/fill/blobs/uploads/?digest={sha(blob)}",
                                     data=blob,
                                     headers={"Content-Type": "application/octet-stream"})
            else:
                loc = requests.post(f"{r.url}/v2/fill/blobs/uploads/").headers.get("Location")
                if loc is None:
                    refused.append(500)
                    continue
                resp = requests.patch(r.url + loc, data=blob, headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"0-{len(blob) - 1}"})
            if resp.status_code >= 500:
                refused.append(resp.status_code)
            else:
                assert resp.status_code in (201, 202), resp.text
        assert refused, "the 6 MiB disk never filled"
        assert set(refused) <= {500, 507}, refused
        assert 507 in refused  # ENOSPC is named as such
        assert r.proc.poll() is None, "the registry died on a full disk"
        # what was stored before is intact
        for d, blob in kept.items():
            got = requests.get(f"{r.url}/v2/keep/blobs/{d}")
            assert got.status_code == 200 and got.content == blob
        r.stop()
        fsck = r.run("fsck", "--data", r.data_dir, check=False)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        # free space (gc drops the fill repository's unreferenced blobs), then
        # uploads work again
        gc = r.run("gc", "--data", r.data_dir, "--grace", "0")
        assert gc.returncode == 0, gc.stderr
        r.start()
        blob = os.urandom(256 * 1024)
        assert requests.post(f"{r.url}/v2/after/blobs/uploads/?digest={sha(blob)}", data=blob,
                             headers={"Content-Type": "application/octet-stream"}
                             ).status_code == 201
        for d, blob in kept.items():
            assert requests.get(f"{r.url}/v2/keep/blobs/{d}").content == blob
        assert requests.get(f"{r.url}/v2/keep/manifests/v1", headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json"}).content == manifest
    finally:
        r.stop()
        subprocess.run(["umount", "-l", str(mnt)], check=False)
