"""`fogport sandbox up/down`: a whole deployment (cloud, fogs, edge) as
separate processes, joined, over TLS with token authentication, and stopped
without leftovers. The main job (`sandbox up --demo`) is in test_demo.py."""
import json
import os
import subprocess

import requests

from conftest import FOGPORT
from fedhelp import fogport, pid_alive


def test_sandbox_up_and_down(tmp_path):
    d = tmp_path / "sb"
    fogport("sandbox", "up", "--dir", str(d), "--fogs", "2", "--edges", "1")
    topo = json.loads((d / "topology.json").read_text())
    try:
        assert (d / "topology.json").stat().st_mode & 0o777 == 0o600  # holds the password
        ids = [(n["id"], n["role"], n.get("parent")) for n in topo["nodes"]]
        assert ids == [("cloud", "cloud", None), ("fog-1", "fog", "cloud"),
                       ("fog-2", "fog", "cloud"), ("edge-1", "edge", "fog-1")]
        ca = topo["ca"]
        admin = (topo["admin"]["user"], topo["admin"]["password"])
        for n in topo["nodes"]:
            assert pid_alive(n["pid"])
            r = requests.get(n["registry"] + "/v2/", verify=ca, timeout=5)
            # every node demands tokens addressed to itself: from the cloud,
            # or a fog's own token service (it issues during an outage too)
            assert r.status_code == 401
            ch = r.headers["WWW-Authenticate"]
            issuer = n["registry"] if n["role"] == "fog" else topo["nodes"][0]["registry"]
            assert ch.startswith(f'Bearer realm="{issuer}/auth/token"')
            assert f'service="{n["id"] if n["role"] != "cloud" else "fogport"}"' in ch
            if n["role"] != "cloud":
                assert os.path.exists(os.path.join(n["data"], "data", "node", "credential.json"))
        listed = fogport("node", "list", "--data", os.path.join(topo["nodes"][0]["data"], "data"))
        assert [l.split()[0] for l in listed.stdout.splitlines()] == ["edge-1", "fog-1", "fog-2"]
        # the admin pushes to a fog with a token from the cloud
        blob = os.urandom(1000)
        import hashlib
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        fog = topo["nodes"][1]["registry"]
        tok = requests.get(f'{topo["nodes"][0]["registry"]}/auth/token',
                           params={"service": "fog-1", "scope": "repository:t:pull,push"},
                           auth=admin, verify=ca).json()["token"]
        r = requests.post(f"{fog}/v2/t/blobs/uploads/?digest={digest}", data=blob, verify=ca,
                          headers={"Authorization": f"Bearer {tok}",
                                   "Content-Type": "application/octet-stream"})
        assert r.status_code == 201
        client = json.loads((d / "client.json").read_text())
        assert client["cloud"] == topo["nodes"][0]["registry"] and client["ca"] == ca
        # a second `up` on a running sandbox is refused
        again = fogport("sandbox", "up", "--dir", str(d), check=False)
        assert again.returncode != 0 and "sandbox down first" in again.stderr
    finally:
        out = fogport("sandbox", "down", "--dir", str(d))
    assert "3 nodes stopped" in out.stdout or "4 nodes stopped" in out.stdout
    for n in topo["nodes"]:
        assert not pid_alive(n["pid"]), f"{n['id']} still running"
    assert not (d / "topology.json").exists()
    # up again on the same directory: the fogs keep their identities
    fogport("sandbox", "up", "--dir", str(d), "--fogs", "1", "--edges", "0")
    fogport("sandbox", "down", "--dir", str(d))


def test_login_context(tmp_path):
    """`fogport login` checks the credential against the cloud before saving
    it (0600); `fogport ls` then needs no --registry/--cacert/--user, and so
    does the sandbox's own client.json."""
    d = tmp_path / "sb"
    fogport("sandbox", "up", "--dir", str(d), "--fogs", "1", "--edges", "0")
    try:
        topo = json.loads((d / "topology.json").read_text())
        cloud, ca = topo["nodes"][0]["registry"], topo["ca"]
        pw = topo["admin"]["password"]
        ctx = tmp_path / "ctx.json"
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1", FOGPORT_CONFIG=str(ctx))
        bad = subprocess.run([FOGPORT, "login", cloud, "--user", "admin", "--password-stdin",
                              "--ca", ca], input="not-the-password\n", capture_output=True,
                             text=True, env=env)
        assert bad.returncode == 1 and not ctx.exists()
        assert "LeakSanitizer" not in bad.stderr
        ok = subprocess.run([FOGPORT, "login", cloud, "--user", "admin", "--password-stdin",
                             "--ca", ca], input=pw + "\n", capture_output=True, text=True,
                            env=env)
        assert ok.returncode == 0, ok.stderr
        assert ctx.stat().st_mode & 0o777 == 0o600
        saved = json.loads(ctx.read_text())
        assert saved["cloud"] == cloud and saved["user"] == "admin" and saved["ca"] == ca
        # push something as the admin, then list through the context alone
        import hashlib
        cfg = b'{"architecture":"amd64","os":"linux"}'
        d_cfg = "sha256:" + hashlib.sha256(cfg).hexdigest()
        tok = requests.get(f"{cloud}/auth/token", params={
            "service": "fogport", "scope": "repository:ctx_service:pull,push"},
            auth=("admin", pw), verify=ca).json()["token"]
        h = {"Authorization": f"Bearer {tok}"}
        assert requests.post(f"{cloud}/v2/ctx_service/blobs/uploads/?digest={d_cfg}", data=cfg,
                             headers=h, verify=ca).status_code == 201
        man = json.dumps({"schemaVersion": 2,
                          "mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                     "digest": d_cfg, "size": len(cfg)}, "layers": []}).encode()
        r = requests.put(f"{cloud}/v2/ctx_service/manifests/2.0", data=man, verify=ca, headers={
            **h, "Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        assert r.status_code == 201
        for config in (ctx, d / "client.json"):
            out = subprocess.run([FOGPORT, "ls"], capture_output=True, text=True,
                                 env=dict(env, FOGPORT_CONFIG=str(config)))
            assert out.stdout == '{"name": "ctx_service", "tags": ["2.0"]}\n', out.stderr
    finally:
        fogport("sandbox", "down", "--dir", str(d))


def test_revocation_reaches_fogs(tmp_path):
    """A revoked node's token, though unexpired, is refused by the other fogs
    within their revocation interval (2 s in the sandbox), not only by the
    cloud."""
    import time
    d = tmp_path / "sb"
    fogport("sandbox", "up", "--dir", str(d), "--fogs", "2", "--edges", "0")
    try:
        topo = json.loads((d / "topology.json").read_text())
        ca, cloud = topo["ca"], topo["nodes"][0]
        fog1, fog2 = topo["nodes"][1], topo["nodes"][2]
        cred = json.loads(open(os.path.join(fog1["data"], "data", "node",
                                            "credential.json")).read())
        tok = requests.get(f'{cloud["registry"]}/auth/token', params={
            "service": "fog-2", "scope": "repository:iot_service:pull"},
            auth=(cred["id"], cred["secret"]), verify=ca).json()["token"]
        h = {"Authorization": f"Bearer {tok}"}
        assert requests.get(f'{fog2["registry"]}/v2/', headers=h, verify=ca).status_code == 200
        # the revocation list is not public
        assert requests.get(f'{cloud["registry"]}/api/v1/revoked',
                            verify=ca).status_code == 401
        fogport("node", "revoke", "fog-1", "--data", os.path.join(cloud["data"], "data"))
        listed = requests.get(f'{cloud["registry"]}/api/v1/revoked', verify=ca,
                              auth=(topo["admin"]["user"], topo["admin"]["password"])).json()
        assert listed == {"nodes": ["fog-1"]}
        deadline = time.time() + 8
        status = 200
        while time.time() < deadline and status == 200:
            time.sleep(0.25)
            status = requests.get(f'{fog2["registry"]}/v2/', headers=h, verify=ca).status_code
        assert status == 401, "fog-2 still honours the revoked fog-1's token"
        # other nodes are unaffected
        cred2 = json.loads(open(os.path.join(fog2["data"], "data", "node",
                                             "credential.json")).read())
        tok2 = requests.get(f'{cloud["registry"]}/auth/token', params={"service": "fog-2"},
                            auth=(cred2["id"], cred2["secret"]), verify=ca).json()["token"]
        assert requests.get(f'{fog2["registry"]}/v2/', verify=ca,
                            headers={"Authorization": f"Bearer {tok2}"}).status_code == 200
    finally:
        fogport("sandbox", "down", "--dir", str(d))
