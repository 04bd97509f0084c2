"""Node identity end to end: fogs and edges join the cloud with one-time join
tokens (POST /api/v1/join), keep a node credential and a certificate from the
deployment CA, serve HTTPS with token auth pointing at the cloud, and
authenticate to the cloud's token service as node principals (role:fog,
role:edge, node:ID, {self} = the node id). Join attacks (spent, expired,
bound and brute-forced tokens, taken and invalid ids, garbage CSRs),
revocation, and the cloud's identity.db across restarts.

One module-wide deployment (CA, cloud over HTTPS with the paper images pushed
by ops, fog-1 joined on its first start) serves most tests; attack and
rate-limit tests run their own clouds (the limiter is per address and shared
with the token service)."""
import json
import os
import re
import ssl
import subprocess
import time

import pytest
import requests

from helpers import images, skopeo  # noqa: F401 (fixture)
from nodehelp import (Deployment, cert_names, credential, join, load_cert, make_csr,
                      node_config, node_list, node_revoke, node_token, post_join,
                      run_node_once, start_cloud, start_node, wait_up, https_registry)
from ocihelp import Client, check_error_body
from tokenhelp import (bearer, challenge, decode_jwt, fogport, stop_checked, token_get,
                       token_post)

PW = {"ops": "ops-pass-4711-x"}
OPS = ("ops", PW["ops"])
POLICY = """# fogport node identity test policy
user:ops        *                   pull,push,delete,catalog
role:fog        {self}/*            pull,push
role:fog        iot_service         pull
role:edge       *                   pull
node:fog-2      monitoring_service  pull
"""
PAPER = ["iot_service:1.0", "monitoring_service:1.0", "web_service:latest"]


def repo_access(name, *actions):
    return {"type": "repository", "name": name, "actions": list(actions)}


def get_token(cloud_url, ca, auth, scopes=(), service="fogport"):
    r = token_get(cloud_url, service, scopes, auth, verify=ca)
    assert r.status_code == 200, f"token {auth[0]} {scopes} @{service}: {r.status_code} {r.text}"
    return r.json()["token"]


def assert_invalid_token(resp, service=None):
    assert resp.status_code == 401, (resp.request.method, resp.url, resp.status_code, resp.text)
    scheme, params = challenge(resp)
    assert scheme == "Bearer" and params.get("error") == "invalid_token", \
        resp.headers.get("WWW-Authenticate")
    if service:
        assert params.get("service") == service, resp.headers["WWW-Authenticate"]
    assert "UNAUTHORIZED" in check_error_body(resp)


def assert_refused(r, what):
    """A skopeo push refused by the policy (403; "denied" when the registry
    had a body to say it in)."""
    err = r.stderr.lower()
    assert r.returncode != 0 and ("denied" in err or "403" in err), (what, r.stderr)


def assert_join(resp, status, code=None):
    assert resp.status_code == status, f"join: expected {status}, got {resp.status_code} " \
                                       f"{resp.text[:300]}"
    if code:
        assert code in resp.codes(), resp.text
    if status != 200:
        assert b"secret" not in resp.content and b"BEGIN CERTIFICATE" not in resp.content


class World:
    pass


class TlsClient(Client):
    """ocihelp.Client over HTTPS verified with the deployment CA (per request:
    REQUESTS_CA_BUNDLE in the environment would override Session.verify)."""

    def __init__(self, base, ca, tok=None):
        super().__init__(base)
        self.ca = ca
        if tok:
            self.s.headers.update(bearer(tok))

    def req(self, method, path, **kw):
        kw.setdefault("verify", self.ca)
        return super().req(method, path, **kw)


@pytest.fixture(scope="module")
def world(tmp_path_factory, images):  # noqa: F811
    """The deployment CA, a cloud (HTTPS, policy above, the three paper
    images pushed by ops with skopeo), and fog-1 joined on its first start
    with an unbound fog token."""
    d = tmp_path_factory.mktemp("nodes")
    w = World()
    w.dir = str(d)
    w.dep = Deployment(d / "deploy", PW, POLICY)
    w.ca = w.dep.ca_crt
    w.cloud = start_cloud(w.dep, d, "cloud", login_failures=1000)
    w.cloud_url = w.cloud.url
    w.nodes = []
    try:
        w.digests = {}
        for ref in PAPER:
            skopeo("copy", "--quiet", "--dest-cert-dir", w.dep.certs, "--dest-creds",
                   f"ops:{PW['ops']}", images.ref(ref), f"docker://{w.cloud.host}/{ref}")
            w.digests[ref] = images.descriptor(ref)["digest"]
        w.fog1_token = node_token(w.cloud, "fog")
        w.fog1 = start_node(d, "fog-1", "fog", w.cloud_url, w.ca, w.fog1_token)
        w.nodes.append(w.fog1)
    except BaseException:
        for n in w.nodes + [w.cloud]:
            n.stop()
        raise
    yield w
    for n in w.nodes:
        stop_checked(n)
    stop_checked(w.cloud)


def node_creds(reg):
    c = credential(reg)
    return c["id"], c["secret"]


def skopeo_creds(reg):
    return "%s:%s" % node_creds(reg)


# ============================================================ 1. join

def test_fog_joins_on_first_start(world):
    fog, cloud = world.fog1, world.cloud
    nd = os.path.join(fog.data_dir, "node")
    for name in ("credential.json", "ca.crt", "token.pub", "tls.key", "tls.crt"):
        assert os.path.isfile(os.path.join(nd, name)), f"{name} missing in {os.listdir(nd)}"
    for name in ("credential.json", "tls.key"):
        mode = os.stat(os.path.join(nd, name)).st_mode & 0o777
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    assert os.stat(nd).st_mode & 0o077 == 0, oct(os.stat(nd).st_mode)

    cred = credential(fog)
    assert set(cred) == {"id", "role", "secret", "cloud"}, cred.keys()
    assert cred["id"] == "fog-1" and cred["role"] == "fog" and cred["cloud"] == world.cloud_url
    assert len(cred["secret"]) >= 32 and cred["secret"] != world.fog1_token
    # the deployment's CA and the cloud's token key were handed over
    with open(world.ca) as a, open(os.path.join(nd, "ca.crt")) as b:
        assert load_cert(a.read()) == load_cert(b.read())
    with open(os.path.join(world.dep.ca_dir, "token.pub")) as a, \
            open(os.path.join(nd, "token.pub")) as b:
        assert a.read().strip() == b.read().strip()

    # the certificate: signed by the CA, for the fog's id and its listen IP
    v = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(nd, "ca.crt"),
                        os.path.join(nd, "tls.crt")], capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr
    with open(os.path.join(nd, "tls.crt")) as f:
        leaf = load_cert(f.read())
    cn, dns, ips = cert_names(leaf)
    assert cn == "fog-1", cn
    assert "127.0.0.1" in ips, (dns, ips)
    # ... and it is the certificate the fog serves
    served = ssl.get_server_certificate(("127.0.0.1", fog.port))
    assert load_cert(served) == leaf

    rows = node_list(cloud)
    assert "fog-1" in rows, rows
    assert rows["fog-1"][0] == "fog" and "revoked" not in rows["fog-1"], rows["fog-1"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows["fog-1"][1]), rows["fog-1"]

    # HTTPS verified with the deployment CA; token auth pointing at the fog's
    # own token service (it issues tokens itself, x5c; test_x5c.py)
    r = requests.get(fog.url + "/v2/", verify=world.ca, timeout=10)
    assert r.status_code == 401, (r.status_code, r.text)
    scheme, params = challenge(r)
    assert scheme == "Bearer", r.headers
    assert params.get("realm") == f"{fog.url}/auth/token", params
    assert params.get("service") == "fog-1", params

    # restart without the join token: the credential is reused, nothing re-joins
    before = {n: open(os.path.join(nd, n), "rb").read()
              for n in ("credential.json", "tls.crt", "tls.key")}
    stop_checked(fog)
    node_config(fog, "fog-1", "fog", world.cloud_url, world.ca, join_token=None)
    fog.start(wait=False)
    r = wait_up(fog, world.ca)
    assert r.status_code == 401 and challenge(r)[1].get("service") == "fog-1"
    for n, data in before.items():
        assert open(os.path.join(nd, n), "rb").read() == data, f"{n} changed on restart"
    assert node_list(cloud)["fog-1"] == rows["fog-1"]
    assert fog.log().count("event=node_joined") == 1, fog.log()[-2000:]
    # secrets never reach the logs, and the cloud stores only their hashes
    for log in (fog.log(), cloud.log()):
        assert cred["secret"] not in log
        assert world.fog1_token not in log
    db = b"".join(open(os.path.join(cloud.data_dir, n), "rb").read()
                  for n in os.listdir(cloud.data_dir) if n.startswith("identity.db"))
    assert b"fog-1" in db  # the directory is there ...
    assert cred["secret"].encode() not in db and world.fog1_token.encode() not in db


def test_fog_without_credential_does_not_start(world, tmp_path):
    # no credential and no join token: a clear error
    reg = https_registry(tmp_path, "fog-8")
    node_config(reg, "fog-8", "fog", world.cloud_url, world.ca, join_token=None)
    rc, log = run_node_once(reg)
    assert rc != 0 and "join_token" in log, (rc, log[-2000:])
    assert not os.path.exists(os.path.join(reg.data_dir, "node", "credential.json"))
    # a token the cloud never issued: refused, the fog does not serve
    node_config(reg, "fog-8", "fog", world.cloud_url, world.ca,
                join_token="fpj_" + os.urandom(32).hex())
    rc, log = run_node_once(reg)
    assert rc != 0 and "401" in log, (rc, log[-2000:])
    assert not os.path.exists(os.path.join(reg.data_dir, "node", "credential.json"))
    assert "fog-8" not in node_list(world.cloud)


# ============================================================ 2. authorization

def test_fog_and_edge_rights_on_the_cloud(world, images, tmp_path):  # noqa: F811
    cloud, certs = world.cloud, world.dep.certs
    fog_creds = skopeo_creds(world.fog1)
    fog_id, fog_secret = node_creds(world.fog1)

    # the token the fog gets: a node principal with its role's rights
    tok = get_token(world.cloud_url, world.ca, (fog_id, fog_secret),
                    ["repository:fog-1/x:pull,push", "repository:iot_service:pull,push",
                     "repository:web_service:pull", "repository:fog-2/x:pull,push"])
    _, claims, _ = decode_jwt(tok)
    assert claims["sub"] == "fog-1" and claims["fogport"]["kind"] == "node", claims
    assert claims["access"] == [repo_access("fog-1/x", "pull", "push"),
                                repo_access("iot_service", "pull"), repo_access("web_service"),
                                repo_access("fog-2/x")]
    # ... also by the OAuth2 password grant
    r = token_post(world.cloud_url, fog_id, fog_secret, scopes=["repository:fog-1/x:push"],
                   verify=world.ca)
    assert r.status_code == 200, r.text
    assert decode_jwt(r.json()["access_token"])[1]["access"] == [repo_access("fog-1/x", "push")]

    # skopeo as the fog: its own namespace yes, iot_service read-only, web_service not at all
    skopeo("copy", "--quiet", "--dest-cert-dir", certs, "--dest-creds", fog_creds,
           images.ref("iot_service:1.0"), f"docker://{cloud.host}/fog-1/x:1")
    info = json.loads(skopeo("inspect", "--cert-dir", certs, "--creds", f"ops:{PW['ops']}",
                             f"docker://{cloud.host}/fog-1/x:1").stdout)
    assert info["Digest"] == world.digests["iot_service:1.0"]
    for dest in ("iot_service:evil", "fog-2/x:1"):
        r = skopeo("copy", "--quiet", "--dest-cert-dir", certs, "--dest-creds", fog_creds,
                   images.ref("web_service:latest"), f"docker://{cloud.host}/{dest}", check=False)
        assert_refused(r, dest)
    r = skopeo("inspect", "--cert-dir", certs, "--creds", fog_creds,
               f"docker://{cloud.host}/web_service:latest", check=False)
    assert r.returncode != 0, r.stdout
    out = tmp_path / "pulled"
    skopeo("copy", "--quiet", "--src-cert-dir", certs, "--src-creds", fog_creds,
           "--preserve-digests", f"docker://{cloud.host}/iot_service:1.0", f"oci:{out}:iot")
    idx = json.loads((out / "index.json").read_text())
    assert idx["manifests"][0]["digest"] == world.digests["iot_service:1.0"]
    # nothing was pushed where it was denied
    ops = TlsClient(world.cloud_url, world.ca,
                    get_token(world.cloud_url, world.ca, OPS,
                              ["repository:iot_service:pull", "repository:fog-2/x:pull"]))
    assert ops.tags("iot_service") == ["1.0"]
    assert ops.get("/v2/fog-2/x/tags/list").status_code == 404

    # an edge joined with an edge token: pulls everything, pushes nothing
    edge = start_node(tmp_path, "edge-1", "edge", world.cloud_url, world.ca,
                      node_token(cloud, "edge"))
    world.nodes.append(edge)
    assert credential(edge)["role"] == "edge"
    assert node_list(cloud)["edge-1"][0] == "edge"
    edge_creds = skopeo_creds(edge)
    for ref in ("iot_service:1.0", "web_service:latest"):
        info = json.loads(skopeo("inspect", "--cert-dir", certs, "--creds", edge_creds,
                                 f"docker://{cloud.host}/{ref}").stdout)
        assert info["Digest"] == world.digests[ref]
    for dest in ("edge-1/x:1", "iot_service:evil"):
        r = skopeo("copy", "--quiet", "--dest-cert-dir", certs, "--dest-creds", edge_creds,
                   images.ref("iot_service:1.0"), f"docker://{cloud.host}/{dest}", check=False)
        assert_refused(r, dest)
    etok = get_token(world.cloud_url, world.ca, node_creds(edge),
                     ["repository:edge-1/x:pull,push", "repository:web_service:pull,push"])
    _, claims, _ = decode_jwt(etok)
    assert claims["sub"] == "edge-1" and claims["fogport"]["kind"] == "node"
    assert claims["access"] == [repo_access("edge-1/x", "pull"),
                                repo_access("web_service", "pull")]
    # wrong secrets get nothing
    assert token_get(world.cloud_url, auth=("fog-1", fog_secret + "x"),
                     verify=world.ca).status_code == 401
    assert token_get(world.cloud_url, auth=("edge-1", fog_secret),
                     verify=world.ca).status_code == 401


def test_ops_on_the_fog_and_token_audiences(world, images, tmp_path):  # noqa: F811
    fog1, certs = world.fog1, world.dep.certs
    # ops pushes to the fog: skopeo follows the fog's challenge to the fog's
    # own token service, which knows ops from its copy of the cloud's users
    skopeo("copy", "--quiet", "--dest-cert-dir", certs, "--dest-creds", f"ops:{PW['ops']}",
           images.ref("iot_service:1.0"), f"docker://{fog1.host}/iot_service:1.0")
    assert re.search(r"event=token_issued remote=\S+ sub=ops service=fog-1", fog1.log()), \
        fog1.log()[-2000:]
    out = fogport("ls", "--registry", fog1.url, "--cacert", world.ca, "--user",
                  f"ops:{PW['ops']}", check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [json.dumps({"name": "iot_service", "tags": ["1.0"]})]
    # the fog itself, as a node principal, may pull iot_service from its own registry
    info = json.loads(skopeo("inspect", "--cert-dir", certs, "--creds", skopeo_creds(fog1),
                             f"docker://{fog1.host}/iot_service:1.0").stdout)
    assert info["Digest"] == world.digests["iot_service:1.0"]

    fog2 = start_node(tmp_path, "fog-2", "fog", world.cloud_url, world.ca,
                      node_token(world.cloud, "fog", node_id="fog-2"))
    world.nodes.append(fog2)
    tok = get_token(world.cloud_url, world.ca, OPS, ["repository:iot_service:pull"],
                    service="fog-1")
    assert decode_jwt(tok)[1]["aud"] == "fog-1"
    path = "/v2/iot_service/manifests/1.0"
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json, "
                        "application/vnd.oci.image.index.v1+json"}
    r = requests.get(fog1.url + path, headers={**bearer(tok), **accept}, verify=world.ca,
                     timeout=10)
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == \
        world.digests["iot_service:1.0"], (r.status_code, r.text)
    # another fog and the cloud refuse it (wrong audience)
    assert_invalid_token(requests.get(fog2.url + path, headers=bearer(tok), verify=world.ca,
                                      timeout=10), service="fog-2")
    assert_invalid_token(requests.get(world.cloud_url + path, headers=bearer(tok),
                                      verify=world.ca, timeout=10), service="fogport")
    # control: fog-2 takes tokens for fog-2
    tok2 = get_token(world.cloud_url, world.ca, OPS, ["repository:iot_service:pull"],
                     service="fog-2")
    r = requests.get(fog2.url + "/v2/", headers=bearer(tok2), verify=world.ca, timeout=10)
    assert r.status_code == 200, (r.status_code, r.text)
    # the cloud signs only for joined nodes
    r = token_get(world.cloud_url, "fog-7", auth=OPS, verify=world.ca)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text

    # node:fog-2 rules apply to fog-2 only; {self} is each node's own id
    scopes = ["repository:monitoring_service:pull", "repository:fog-2/x:pull,push",
              "repository:fog-1/x:pull,push"]
    c2 = decode_jwt(get_token(world.cloud_url, world.ca, node_creds(fog2), scopes))[1]
    assert c2["access"] == [repo_access("monitoring_service", "pull"),
                            repo_access("fog-2/x", "pull", "push"), repo_access("fog-1/x")]
    c1 = decode_jwt(get_token(world.cloud_url, world.ca, node_creds(fog1), scopes))[1]
    assert c1["access"] == [repo_access("monitoring_service"), repo_access("fog-2/x"),
                            repo_access("fog-1/x", "pull", "push")]


# ============================================================ 3. join attacks

def test_join_attacks(world, tmp_path):
    dep = world.dep
    cloud = start_cloud(dep, tmp_path, "cloud-a", login_failures=1000)
    try:
        _join_attacks(dep, cloud)
    finally:
        stop_checked(cloud)


def _join_attacks(dep, cloud):
    ca = dep.ca_crt
    expired = node_token(cloud, "fog", ttl="1s")
    t_expired = time.time()

    # a good join: credential, CA, token key, a certificate for the id
    spent = node_token(cloud, "fog")
    r = join(cloud, ca, spent, "fog-4")
    assert_join(r, 200)
    body = r.json()
    assert body["id"] == "fog-4" and body["role"] == "fog" and body["secret"]
    assert load_cert(body["ca"]) == load_cert(open(dep.ca_crt).read())
    assert body["token_keys"].strip() == open(os.path.join(dep.ca_dir, "token.pub")).read().strip()
    assert cert_names(load_cert(body["certificate"]))[0] == "fog-4"
    tok = get_token(cloud.url, ca, ("fog-4", body["secret"]))
    assert decode_jwt(tok)[1]["sub"] == "fog-4"

    # a spent token, by another id and by the same id
    assert_join(join(cloud, ca, spent, "fog-5"), 401, "UNAUTHORIZED")
    assert join(cloud, ca, spent, "fog-4").status_code in (401, 409)

    # a token bound to fog-9 is no good for fog-3, and still good for fog-9
    bound = node_token(cloud, "fog", node_id="fog-9")
    assert_join(join(cloud, ca, bound, "fog-3"), 401, "UNAUTHORIZED")
    assert_join(join(cloud, ca, bound, "fog-9"), 200)

    # an id that already joined
    assert_join(join(cloud, ca, node_token(cloud, "fog"), "fog-4"), 409, "DENIED")
    assert_join(join(cloud, ca, node_token(cloud, "edge"), "fog-9"), 409, "DENIED")

    # invalid ids and malformed requests
    tok = node_token(cloud, "fog")
    for bad_id in ("Fog_1", "../x", "a" * 64, "", "fog/1", "fog 1"):
        assert_join(join(cloud, ca, tok, bad_id, csr=make_csr("fog-x")[0]), 400)
    csr = make_csr("fog-x")[0]
    for body in (b"not json", b"[]", b"", b'{"token": "' + tok.encode(),
                 {"token": 5, "id": "fog-x", "csr": csr}, {"id": "fog-x", "csr": csr},
                 {"token": tok, "csr": csr}, {"token": tok, "id": 7, "csr": csr}):
        r = post_join(cloud, ca, body)
        assert_join(r, 400)
    # the longest valid id (63) is fine
    assert_join(join(cloud, ca, node_token(cloud, "fog"), "a" * 63), 200)

    # a garbage CSR: 400, and the token is not spent
    tok = node_token(cloud, "fog")
    for garbage in ("garbage", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                               "-----END CERTIFICATE REQUEST-----\n"):
        assert_join(join(cloud, ca, tok, "fog-6", csr=garbage), 400)
    assert "fog-6" not in node_list(cloud)
    r = join(cloud, ca, tok, "fog-6")
    assert_join(r, 200)
    # the CN is the id, whatever the request asked for
    r = join(cloud, ca, node_token(cloud, "fog"), "fog-10", csr=make_csr("cloud")[0])
    assert_join(r, 200)
    assert cert_names(load_cert(r.json()["certificate"]))[0] == "fog-10"
    # the names are the cloud's decision: the node's id (and names under it)
    # and the address it joined from; asking for the cloud's names or other
    # addresses gets nothing
    r = join(cloud, ca, node_token(cloud, "fog"), "fog-21",
             csr=make_csr("fog-21", dns=("cloud", "localhost", "fog-21.site", "fog-210"),
                          ips=("127.0.0.1", "10.0.0.1"))[0])
    assert_join(r, 200)
    cn, dns, ips = cert_names(load_cert(r.json()["certificate"]))
    assert cn == "fog-21"
    assert sorted(dns) == ["fog-21", "fog-21.site"], dns
    assert ips == ["127.0.0.1"], ips
    # with a CA, a join without a certificate request is refused, token kept
    tok = node_token(cloud, "fog")
    assert_join(post_join(cloud, ca, {"token": tok, "id": "fog-22"}), 400)
    assert_join(join(cloud, ca, tok, "fog-22"), 200)

    # a node may pick a user's name as its id, but never gets the user's rights
    r = join(cloud, ca, node_token(cloud, "fog"), "ops")
    if r.status_code == 200:
        c = decode_jwt(get_token(cloud.url, ca, ("ops", r.json()["secret"]),
                                 ["repository:iot_service:pull,push,delete"]))[1]
        assert c["fogport"]["kind"] == "node"
        assert c["access"] == [repo_access("iot_service", "pull")], c
    else:
        assert r.status_code in (400, 409), (r.status_code, r.text)
    c = decode_jwt(get_token(cloud.url, ca, OPS, ["repository:iot_service:pull,push"]))[1]
    assert c["access"] == [repo_access("iot_service", "pull", "push")]

    # the expired token
    time.sleep(max(0.0, t_expired + 2.2 - time.time()))
    assert_join(join(cloud, ca, expired, "fog-11"), 401, "UNAUTHORIZED")

    rows = node_list(cloud)
    assert {"fog-4", "fog-9", "fog-6", "fog-10"} <= set(rows), rows
    for never in ("fog-3", "fog-5", "fog-11", "Fog_1", "fog-x"):
        assert never not in rows, rows
    log = cloud.log()
    assert "join_refused" in log
    for t in (spent, bound, expired):
        assert t not in log


def test_node_ids_cannot_shadow_the_cloud(world, tmp_path):
    """A joining node picks its id (unless the token is bound). Taking the
    cloud's own service name ([auth] token_service, default "fogport") would
    make its registry accept, and let it replay, every token clients obtain
    for the cloud registry (aud "fogport"): clients pushing to that "fog"
    hand it push tokens valid at the cloud. Taking the cloud's [node] id
    "cloud" gets it a CA-signed certificate named like the cloud. Both ids
    are taken (409) like an already joined one."""
    cloud = start_cloud(world.dep, tmp_path, "cloud-s", login_failures=1000)
    ca = world.ca
    try:
        results = {}
        for nid in ("fogport", "cloud"):
            r = join(cloud, ca, node_token(cloud, "fog"), nid)
            results[nid] = (r.status_code, r.codes() or "joined")
            if r.status_code == 200:
                # what the impostor gets: the cloud signs "fogport" tokens with
                # the node as subject, and the cloud registry accepts them
                tok = get_token(cloud.url, ca, (nid, r.json()["secret"]),
                                [f"repository:{nid}/x:pull,push"], service="fogport")
                results[nid] += (f"token aud={decode_jwt(tok)[1]['aud']}",)
        assert all(s in (400, 409) for s, *_ in results.values()), \
            f"a node joined under the cloud's names: {results}"
        assert not {"fogport", "cloud"} & set(node_list(cloud))
    finally:
        stop_checked(cloud)


def test_join_brute_force_is_throttled(world, tmp_path):
    cloud = start_cloud(world.dep, tmp_path, "cloud-b")  # default: 5 failures a minute
    ca = world.ca
    try:
        good = node_token(cloud, "fog")
        for i in range(5):
            assert_join(join(cloud, ca, "fpj_" + os.urandom(32).hex(), f"fog-{i}"), 401)
        r = join(cloud, ca, "fpj_" + os.urandom(32).hex(), "fog-5")
        assert_join(r, 429, "TOOMANYREQUESTS")
        assert 0 < int(r.headers["retry-after"]) <= 60, r.headers
        # the door is closed for that address, even with a valid token ...
        assert_join(join(cloud, ca, good, "fog-b"), 429)
        assert "fog-b" not in node_list(cloud)
        # ... but not for another address, and the valid token was not spent
        assert_join(join(cloud, ca, good, "fog-b", source="127.0.0.2"), 200)
        assert node_list(cloud)["fog-b"][0] == "fog"
    finally:
        stop_checked(cloud)


# ============================================================ 4. revocation

def test_revocation(world, tmp_path):
    cloud, ca = world.cloud, world.ca
    fog = start_node(tmp_path, "fog-r", "fog", world.cloud_url, ca,
                     node_token(cloud, "fog", node_id="fog-r"))
    world.nodes.append(fog)
    fid, secret = node_creds(fog)
    assert fid == "fog-r"
    tok = get_token(world.cloud_url, ca, (fid, secret), ["repository:fog-r/x:pull,push"])
    cl = TlsClient(world.cloud_url, ca, tok)
    _, digest = cl.push_image("fog-r/x", "1")
    assert cl.get("/v2/fog-r/x/manifests/1").status_code == 200  # verified and cached
    get_token(world.cloud_url, ca, (fid, secret), service="fog-r")

    node_revoke(cloud, "fog-r")

    r = token_get(world.cloud_url, auth=(fid, secret), scopes=["repository:fog-r/x:pull"],
                  verify=ca)
    assert r.status_code == 401 and "token" not in r.text, (r.status_code, r.text)
    r = token_post(world.cloud_url, fid, secret, verify=ca)
    assert r.status_code == 401 and r.json()["error"] == "invalid_grant", r.text
    # the token from before the revocation has not expired, but is refused
    assert decode_jwt(tok)[1]["exp"] > time.time() + 60
    assert_invalid_token(cl.get("/v2/fog-r/x/manifests/1"))
    assert_invalid_token(cl.post("/v2/fog-r/x/blobs/uploads/"))
    assert_invalid_token(cl.get("/v2/fog-r/x/tags/list"))
    # the cloud no longer signs for the revoked node's service
    r = token_get(world.cloud_url, "fog-r", auth=OPS, verify=ca)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    # everyone else is unaffected
    ops = TlsClient(world.cloud_url, ca, get_token(world.cloud_url, ca, OPS,
                                                   ["repository:fog-r/x:pull"]))
    r = ops.get("/v2/fog-r/x/manifests/1")
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == digest
    get_token(world.cloud_url, ca, node_creds(world.fog1), ["repository:iot_service:pull"])

    rows = node_list(cloud)
    assert rows["fog-r"][-1] == "revoked", rows["fog-r"]
    assert "revoked" not in rows["fog-1"]
    r = node_revoke(cloud, "unknown", check=False)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "unknown" in r.stderr
    # a revoked node cannot come back under its id
    assert_join(join(cloud, ca, node_token(cloud, "fog"), "fog-r"), 409, "DENIED")
    assert "token_rejected" in cloud.log()


# ============================================================ 5. persistence

def test_identity_survives_cloud_restart(world):
    cloud, ca = world.cloud, world.ca
    pending = node_token(cloud, "edge", node_id="edge-p")
    r = join(cloud, ca, node_token(cloud, "fog"), "fog-z")
    assert_join(r, 200)
    z_secret = r.json()["secret"]
    node_revoke(cloud, "fog-z")
    before = node_list(cloud)
    assert "fog-1" in before and before["fog-z"][-1] == "revoked"

    stop_checked(cloud)
    cloud.start(wait=False)
    wait_up(cloud, ca)

    assert os.path.isfile(os.path.join(cloud.data_dir, "identity.db"))
    assert node_list(cloud) == before
    # joined nodes still authenticate, and are still audiences
    tok = get_token(world.cloud_url, ca, node_creds(world.fog1), ["repository:fog-1/x:pull"])
    assert decode_jwt(tok)[1]["access"] == [repo_access("fog-1/x", "pull")]
    get_token(world.cloud_url, ca, OPS, ["repository:iot_service:pull"], service="fog-1")
    info = json.loads(skopeo("inspect", "--cert-dir", world.dep.certs, "--creds",
                             skopeo_creds(world.fog1),
                             f"docker://{cloud.host}/iot_service:1.0").stdout)
    assert info["Digest"] == world.digests["iot_service:1.0"]
    # revoked stays revoked, spent stays spent, pending stays usable
    assert token_get(world.cloud_url, auth=("fog-z", z_secret), verify=ca).status_code == 401
    assert_join(join(cloud, ca, world.fog1_token, "fog-12"), 401)
    assert_join(join(cloud, ca, pending, "edge-p"), 200)
    assert node_list(cloud)["edge-p"][0] == "edge"
