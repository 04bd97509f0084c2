"""Token authentication (the Docker token flow, ../shared/specs/docker-registry/
auth-*.md) end to end: real clients (skopeo over HTTP and HTTPS, containerd's
OAuth2 POST, fogport ls), the access policy, forged and tampered tokens, login
rate limiting, signing-key rotation, and a fog registry enforcing the tokens a
cloud token service issues for it.

One module-wide "cloud" node (token service + registry, policy below, the
three paper images pushed by skopeo) serves most tests; tests that need other
settings start their own nodes."""
import json
import os
import re
import shutil
import subprocess
import time

import pytest
import requests

from conftest import have
from helpers import (PAPER_IMAGES, Containerd, images, skopeo,  # noqa: F401 (fixture)
                     skopeo_push)
from ocihelp import Client, check_error_body, raw_request
from tokenhelp import (b64u, b64u_decode, bearer, challenge, claims_for, decode_jwt,
                       es256_raw_sig, fogport, jpart, key_generate, kid_of, load_private,
                       load_public, make_cert, repo_access, sign_es256, sign_hs256, sign_rs256,
                       start_node, stop_checked, token, token_get, token_post, user_set)
from cryptography.hazmat.primitives.asymmetric import ec

PW = {"ops": "ops-pass-4711-x", "reader": "reader-pass-0815-y"}
POLICY = """# fogport test policy
user:ops        *                 pull,push,delete,catalog
user:reader     iot_service       pull
user:reader     *                 catalog
authenticated   scratch/{self}    pull,push,delete
anonymous       public/*          pull
"""
PAPER_REFS = {repo: f"{repo}:{tag}" for repo, tag in PAPER_IMAGES}
OPS = ("ops", PW["ops"])
READER = ("reader", PW["reader"])


def creds(user):
    return f"{user}:{PW[user]}"


class Cloud:
    pass


@pytest.fixture(scope="module")
def cloud(tmp_path_factory, images):  # noqa: F811
    """Token service and registry in one node (token_key set, token_realm
    its own /auth/token, also signs for service fog-1). ops pushed the three
    paper images with skopeo through the token flow, and public/x raw."""
    d = tmp_path_factory.mktemp("cloud")
    c = Cloud()
    c.dir = str(d)
    c.key_path, c.pub_path = str(d / "cloud.key"), str(d / "cloud.pub")
    c.kid = key_generate(d / "cloud")
    c.htpasswd = str(d / "htpasswd")
    for user, pw in PW.items():
        user_set(c.htpasswd, user, pw)
    (d / "policy").write_text(POLICY)
    c.reg = start_node(d, "cloud", {
        "htpasswd": c.htpasswd, "policy": d / "policy", "token_key": c.key_path,
        "token_audiences": "fog-1", "login_failures": 1000})
    c.url = c.reg.url
    try:
        c.pushed = {repo: skopeo_push(images, ref, c.reg, ref, "--dest-creds", creds("ops"))
                    for repo, ref in PAPER_REFS.items()}
        cl = Client(c.url)
        cl.s.headers.update(bearer(token(c.url, *OPS, ["repository:public/x:pull,push"])))
        _, c.public_digest = cl.push_image("public/x", "1")
    except BaseException:
        stop_checked(c.reg)
        raise
    yield c
    stop_checked(c.reg)


def bearer_client(base, tok, verify=True):
    cl = Client(base)
    cl.s.verify = verify
    if tok:
        cl.s.headers.update(bearer(tok))
    return cl


def assert_denied(resp):
    assert resp.status_code == 403, f"{resp.request.method} {resp.url}: expected 403, got " \
                                    f"{resp.status_code} {resp.text[:300]}"
    if resp.request.method != "HEAD":
        assert "DENIED" in check_error_body(resp), resp.text


def assert_challenge(resp, error=None, scope=None, realm=None, service=None):
    """401 with a Bearer challenge (error= and scope= as given; None: absent
    for error, unchecked for scope)."""
    assert resp.status_code == 401, f"{resp.request.method} {resp.url}: expected 401, got " \
                                    f"{resp.status_code} {resp.text[:300]}"
    scheme, params = challenge(resp)
    assert scheme == "Bearer", resp.headers
    assert params.get("error") == error, resp.headers["WWW-Authenticate"]
    if scope is not None:
        assert params.get("scope") == scope, resp.headers["WWW-Authenticate"]
    if realm is not None:
        assert params.get("realm") == realm, resp.headers["WWW-Authenticate"]
    if service is not None:
        assert params.get("service") == service, resp.headers["WWW-Authenticate"]
    if resp.request.method != "HEAD":
        assert "UNAUTHORIZED" in check_error_body(resp)


def access_of(tok):
    return decode_jwt(tok)[1]["access"]


def ls(base, *args):
    return fogport("ls", "--registry", base, *args, check=False)


def ls_line(repo, tag):
    return json.dumps({"name": repo, "tags": [tag]})


# ============================================================ 1. real clients

def test_skopeo_push_and_pull_through_token_flow(cloud, images, tmp_path):
    for repo, ref in PAPER_REFS.items():
        assert cloud.pushed[repo] == images.descriptor(ref)["digest"]
        info = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", creds("ops"),
                                 f"docker://{cloud.reg.host}/{ref}").stdout)
        assert info["Digest"] == cloud.pushed[repo]
        assert info["RepoTags"] == [ref.split(":")[1]]
    # a full pull of every blob, as reader (the policy lets reader pull iot_service)
    out = tmp_path / "pulled"
    skopeo("copy", "--quiet", "--src-tls-verify=false", "--src-creds", creds("reader"),
           "--preserve-digests", f"docker://{cloud.reg.host}/iot_service:1.0", f"oci:{out}:iot")
    idx = json.loads((out / "index.json").read_text())
    assert idx["manifests"][0]["digest"] == cloud.pushed["iot_service"]
    # the clients really went through /auth/token: the registry itself takes
    # no Basic credentials and points at the token service
    r = requests.get(f"{cloud.url}/v2/iot_service/manifests/1.0", auth=OPS, timeout=10)
    assert_challenge(r, scope="repository:iot_service:pull", realm=f"{cloud.url}/auth/token",
                     service="fogport")
    log = cloud.reg.log()
    assert re.search(r'user=ops method=GET path="/auth/token" status=200', log), log[-2000:]
    assert "event=token_issued" in log and "sub=reader" in log
    # no credentials, or a wrong password: nothing served
    anon = skopeo("inspect", "--tls-verify=false", f"docker://{cloud.reg.host}/iot_service:1.0",
                  check=False)
    assert anon.returncode != 0
    bad = skopeo("inspect", "--tls-verify=false", "--creds", "ops:wrong-password",
                 f"docker://{cloud.reg.host}/iot_service:1.0", check=False)
    assert bad.returncode != 0
    assert "401" in bad.stderr or "unauthorized" in bad.stderr.lower(), bad.stderr


def test_skopeo_token_flow_over_https_with_test_ca(tmp_path, images):
    ca, crt, key = make_cert(str(tmp_path / "pki"))
    certs = tmp_path / "certs"  # only the CA: skopeo reads every *.crt/*.key in it
    certs.mkdir()
    shutil.copy(ca, certs / "ca.crt")
    key_generate(tmp_path / "ts")
    user_set(tmp_path / "htpasswd", "ops", PW["ops"])
    # no policy file: the default policy (authenticated users may do anything)
    node = start_node(tmp_path, "tls", {"htpasswd": tmp_path / "htpasswd",
                                        "token_key": tmp_path / "ts.key"},
                      tls=(crt, key), ca=ca)
    try:
        assert node.url.startswith("https://")
        r = requests.get(f"{node.url}/v2/web_service/tags/list", verify=ca, timeout=10)
        assert_challenge(r, realm=f"{node.url}/auth/token", scope="repository:web_service:pull")
        for repo, ref in PAPER_REFS.items():
            skopeo("copy", "--quiet", "--dest-cert-dir", str(certs), "--dest-creds",
                   creds("ops"), images.ref(ref), f"docker://{node.host}/{ref}")
            info = json.loads(skopeo("inspect", "--cert-dir", str(certs), "--creds",
                                     creds("ops"), f"docker://{node.host}/{ref}").stdout)
            assert info["Digest"] == images.descriptor(ref)["digest"]
        out = tmp_path / "pulled"
        skopeo("copy", "--quiet", "--src-cert-dir", str(certs), "--src-creds", creds("ops"),
               "--preserve-digests", f"docker://{node.host}/web_service:latest",
               f"oci:{out}:web")
        assert json.loads((out / "index.json").read_text())["manifests"][0]["digest"] == \
            images.descriptor("web_service:latest")["digest"]
        # without the CA the client refuses the server (registry and token service)
        untrusted = skopeo("inspect", "--creds", creds("ops"),
                           f"docker://{node.host}/web_service:latest", check=False)
        assert untrusted.returncode != 0
        assert "certificate" in untrusted.stderr.lower() or "x509" in untrusted.stderr
        # fogport ls through TLS and the token flow
        out = ls(node.url, "--cacert", ca, "--user", creds("ops"))
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == [ls_line(r, t) for r, t in PAPER_IMAGES]
        # default policy: anonymous is refused (no token: 401; an anonymous
        # token grants nothing: 403)
        r = requests.get(f"{node.url}/v2/iot_service/manifests/1.0", verify=ca, timeout=10)
        assert_challenge(r, scope="repository:iot_service:pull")
        anon = token(node.url, scopes=["repository:iot_service:pull"], verify=ca)
        assert access_of(anon) == repo_access("iot_service")
        assert_denied(requests.get(f"{node.url}/v2/iot_service/manifests/1.0", verify=ca,
                                   headers=bearer(anon), timeout=10))
        assert ls(node.url, "--cacert", ca).returncode != 0
    finally:
        stop_checked(node)


def test_containerd_pulls_with_oauth_post(cloud, tmp_path):
    if not (have("containerd") and have("ctr")):
        pytest.skip("containerd/ctr not installed")
    ref = f"{cloud.reg.host}/web_service:latest"
    ctrd = Containerd(tmp_path / "ctrd").start()
    try:
        r = ctrd.ctr("images", "pull", "--plain-http", "--user", creds("ops"), ref, check=False)
        assert r.returncode == 0, f"ctr pull failed:\n{r.stdout}\n{r.stderr}\n{ctrd.log()}"
        rows = [line.split() for line in ctrd.ctr("images", "ls").stdout.splitlines()]
        assert [row[2] for row in rows if row[0] == ref] == [cloud.pushed["web_service"]]
        # containerd asked with the OAuth2 password grant
        assert re.search(r'user=ops method=POST path="/auth/token" status=200',
                         cloud.reg.log()), cloud.reg.log()[-2000:]
        # reader may not pull web_service; a wrong password gets nothing
        ref2 = f"{cloud.reg.host}/monitoring_service:1.0"
        for user in ("reader:" + PW["reader"], "ops:not-the-password"):
            r = ctrd.ctr("images", "pull", "--plain-http", "--user", user, ref2, check=False)
            assert r.returncode != 0, r.stdout
        assert ref2 not in ctrd.ctr("images", "ls").stdout
    finally:
        ctrd.stop()


def test_fogport_ls_speaks_bearer(cloud):
    out = ls(cloud.url, "--user", creds("ops"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [ls_line("iot_service", "1.0"),
                                       ls_line("monitoring_service", "1.0"),
                                       ls_line("public/x", "1"), ls_line("web_service", "latest")]
    out = ls(cloud.url, "--user", creds("reader"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [ls_line("iot_service", "1.0")]
    out = ls(cloud.url)
    assert out.returncode != 0 and "401" in out.stderr, (out.stdout, out.stderr)
    out = ls(cloud.url, "--user", "ops:wrong-password")
    assert out.returncode != 0 and out.stdout == ""


def test_user_management_takes_effect_at_once(cloud):
    ht = cloud.htpasswd
    listed = fogport("user", "list", "--file", ht).stdout.split()
    assert sorted(listed) == ["ops", "reader"]
    short = user_set(ht, "alice", "short", check=False)
    assert short.returncode != 0 and "8" in short.stderr
    assert "alice" not in open(ht).read()
    nope = user_set(ht, "nobody", "long-enough-pw", action="passwd", check=False)
    assert nope.returncode != 0

    user_set(ht, "alice", "alice-first-pw")
    assert re.search(r"^alice:\$2[aby]\$", open(ht).read(), re.M)
    assert oct(os.stat(ht).st_mode & 0o777) == "0o600"
    tok = token(cloud.url, "alice", "alice-first-pw", ["repository:scratch/alice:pull,push",
                                                       "repository:scratch/bob:pull,push"])
    assert access_of(tok) == repo_access("scratch/alice", "pull", "push") + \
        repo_access("scratch/bob")  # {self} expands to the user's own name only
    cl = bearer_client(cloud.url, tok)
    _, digest = cl.push_image("scratch/alice", "v1")
    assert token_post(cloud.url, "alice", "alice-first-pw").status_code == 200

    user_set(ht, "alice", "alice-second-pw", action="passwd")
    assert token_get(cloud.url, auth=("alice", "alice-first-pw")).status_code == 401
    r = token_post(cloud.url, "alice", "alice-first-pw")
    assert r.status_code == 401 and r.json()["error"] == "invalid_grant", r.text
    assert token_get(cloud.url, auth=("alice", "alice-second-pw")).status_code == 200
    info = skopeo("inspect", "--raw", "--tls-verify=false", "--creds", "alice:alice-second-pw",
                  f"docker://{cloud.reg.host}/scratch/alice:v1")
    assert json.loads(info.stdout)["schemaVersion"] == 2

    fogport("user", "del", "alice", "--file", ht)
    assert "alice" not in fogport("user", "list", "--file", ht).stdout.split()
    assert token_get(cloud.url, auth=("alice", "alice-second-pw")).status_code == 401
    assert token_post(cloud.url, "alice", "alice-second-pw").status_code == 401
    gone = skopeo("inspect", "--raw", "--tls-verify=false", "--creds", "alice:alice-second-pw",
                  f"docker://{cloud.reg.host}/scratch/alice:v1", check=False)
    assert gone.returncode != 0
    again = fogport("user", "del", "alice", "--file", ht, check=False)
    assert again.returncode != 0 and "alice" in again.stderr
    # the others are untouched
    assert token_get(cloud.url, auth=OPS).status_code == 200


def test_token_endpoint_contract(cloud):
    r = token_get(cloud.url, scopes=["repository:iot_service:pull"], auth=READER)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["token"] == body["access_token"] and body["expires_in"] == 300
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["issued_at"])
    hdr, cl, sig = decode_jwt(body["token"])
    assert hdr == {"alg": "ES256", "typ": "JWT", "kid": cloud.kid}
    assert cloud.kid == kid_of(load_public(cloud.pub_path))  # RFC 7638 thumbprint
    assert len(sig) == 64
    assert cl["iss"] == "fogport" and cl["sub"] == "reader" and cl["aud"] == "fogport"
    assert cl["exp"] - cl["iat"] == 300 and cl["nbf"] <= cl["iat"] <= time.time() + 2
    assert abs(cl["iat"] - time.time()) < 30 and len(cl["jti"]) >= 16
    assert cl["access"] == repo_access("iot_service", "pull")
    # several scopes as repeated parameters (GET) and space-separated (POST)
    scopes = ["repository:iot_service:pull,push", "repository:web_service:pull"]
    want = repo_access("iot_service", "pull") + repo_access("web_service")
    assert access_of(token(cloud.url, *READER, scopes)) == want
    r = token_post(cloud.url, *READER, scopes=scopes)
    assert r.status_code == 200, r.text
    assert access_of(r.json()["access_token"]) == want
    # errors
    r = token_get(cloud.url, service="elsewhere", auth=OPS)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    r = requests.get(f"{cloud.url}/auth/token", auth=OPS, timeout=10)  # no service
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    r = token_get(cloud.url, auth=("ops", "wrong-password"))
    assert r.status_code == 401 and "token" not in r.text
    assert r.headers["WWW-Authenticate"].startswith("Basic ")
    r = token_get(cloud.url, auth=("ghost", PW["ops"]))
    assert r.status_code == 401 and "token" not in r.text
    r = token_post(cloud.url, "ops", "wrong-password")
    assert r.status_code == 401 and r.json()["error"] == "invalid_grant", r.text
    r = token_post(cloud.url, *OPS, grant_type="client_credentials")
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type", r.text
    r = token_post(cloud.url, *OPS, grant_type="refresh_token")
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type", r.text


# ============================================================ 2. authorization

def test_reader_pulls_but_may_not_push(cloud, images):
    tok = token(cloud.url, *READER, ["repository:iot_service:pull,push"])
    assert access_of(tok) == repo_access("iot_service", "pull")
    cl = bearer_client(cloud.url, tok)
    r = cl.get("/v2/iot_service/manifests/1.0")
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == cloud.pushed["iot_service"]
    cfg = json.loads(r.content)["config"]["digest"]
    assert cl.head(f"/v2/iot_service/blobs/{cfg}").status_code == 200
    assert cl.tags("iot_service") == ["1.0"]
    assert_denied(cl.post("/v2/iot_service/blobs/uploads/"))
    assert_denied(cl.put("/v2/iot_service/manifests/evil", data=r.content,
                         headers={"Content-Type": r.headers["Content-Type"]}))
    deleter = bearer_client(cloud.url, token(cloud.url, *READER,
                                             ["repository:iot_service:delete"]))
    assert access_of(deleter.s.headers["Authorization"][7:]) == repo_access("iot_service")
    assert_denied(deleter.delete(f"/v2/iot_service/manifests/{cloud.pushed['iot_service']}"))
    # the real client: pull works, push is denied
    skopeo("inspect", "--tls-verify=false", "--creds", creds("reader"),
           f"docker://{cloud.reg.host}/iot_service:1.0")
    push = skopeo("copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", creds("reader"),
                  images.ref("web_service:latest"), f"docker://{cloud.reg.host}/iot_service:evil",
                  check=False)
    assert push.returncode != 0 and "denied" in push.stderr.lower(), push.stderr
    ops = bearer_client(cloud.url, token(cloud.url, *OPS, ["repository:iot_service:pull"]))
    assert ops.tags("iot_service") == ["1.0"]
    assert ops.get("/v2/iot_service/manifests/1.0").headers["Docker-Content-Digest"] == \
        cloud.pushed["iot_service"]


def test_reader_cannot_pull_other_services(cloud):
    tok = token(cloud.url, *READER, ["repository:web_service:pull"])
    assert access_of(tok) == repo_access("web_service")
    cl = bearer_client(cloud.url, tok)
    manifest = bearer_client(cloud.url, token(cloud.url, *OPS, ["repository:web_service:pull"]))
    layer = json.loads(manifest.get("/v2/web_service/manifests/latest").content)["layers"][0]
    assert_denied(cl.get("/v2/web_service/manifests/latest"))
    assert_denied(cl.get(f"/v2/web_service/blobs/{layer['digest']}"))
    assert_denied(cl.get("/v2/web_service/tags/list"))
    # a token for iot_service says nothing about web_service: ask again
    iot = bearer_client(cloud.url, token(cloud.url, *READER, ["repository:iot_service:pull"]))
    assert_challenge(iot.get("/v2/web_service/manifests/latest"), error="insufficient_scope",
                     scope="repository:web_service:pull")
    assert_challenge(iot.get(f"/v2/web_service/blobs/{layer['digest']}"),
                     error="insufficient_scope")
    r = skopeo("inspect", "--tls-verify=false", "--creds", creds("reader"),
               f"docker://{cloud.reg.host}/web_service:latest", check=False)
    assert r.returncode != 0


def test_catalog_shows_only_what_the_caller_may_pull(cloud):
    tok = token(cloud.url, *READER, ["registry:catalog:*"])
    claims = decode_jwt(tok)[1]
    assert claims["access"] == [{"type": "registry", "name": "catalog", "actions": ["*"]}]
    assert "iot_service" in claims["fogport"]["pull"]
    r = bearer_client(cloud.url, tok).get("/v2/_catalog")
    assert r.status_code == 200 and r.json()["repositories"] == ["iot_service"]
    ops = bearer_client(cloud.url, token(cloud.url, *OPS, ["registry:catalog:*"]))
    repos = ops.get("/v2/_catalog").json()["repositories"]
    assert {"iot_service", "monitoring_service", "web_service", "public/x"} <= set(repos)
    # anonymous may not list (no catalog rule): the token grants nothing
    anon = token(cloud.url, scopes=["registry:catalog:*"])
    assert access_of(anon) == [{"type": "registry", "name": "catalog", "actions": []}]
    assert "pull" not in decode_jwt(anon)[1].get("fogport", {})  # no patterns without catalog
    assert_challenge(bearer_client(cloud.url, anon).get("/v2/_catalog"),
                     error="insufficient_scope", scope="registry:catalog:*")
    # a repository token is no catalog token
    iot = bearer_client(cloud.url, token(cloud.url, *READER, ["repository:iot_service:pull"]))
    assert_challenge(iot.get("/v2/_catalog"), error="insufficient_scope",
                     scope="registry:catalog:*")
    assert_challenge(requests.get(f"{cloud.url}/v2/_catalog", timeout=10),
                     scope="registry:catalog:*")


def test_anonymous_pulls_public_only(cloud):
    assert_challenge(requests.get(f"{cloud.url}/v2/public/x/manifests/1", timeout=10),
                     scope="repository:public/x:pull")
    assert_challenge(requests.get(f"{cloud.url}/v2/iot_service/manifests/1.0", timeout=10),
                     scope="repository:iot_service:pull")
    tok = token(cloud.url, scopes=["repository:public/x:pull,push",
                                   "repository:iot_service:pull"])
    claims = decode_jwt(tok)[1]
    assert claims["sub"] == ""
    assert claims["access"] == repo_access("public/x", "pull") + repo_access("iot_service")
    cl = bearer_client(cloud.url, tok)
    r = cl.get("/v2/public/x/manifests/1")
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == cloud.public_digest
    assert_denied(cl.post("/v2/public/x/blobs/uploads/"))
    assert_denied(cl.get("/v2/iot_service/manifests/1.0"))
    assert_challenge(cl.get("/v2/public/y/manifests/1"), error="insufficient_scope")
    # skopeo without credentials takes an anonymous token
    skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{cloud.reg.host}/public/x:1")
    r = skopeo("inspect", "--raw", "--tls-verify=false",
               f"docker://{cloud.reg.host}/monitoring_service:1.0", check=False)
    assert r.returncode != 0


def test_basic_mode_enforces_the_same_policy(tmp_path, images):
    for user, pw in PW.items():
        user_set(tmp_path / "htpasswd", user, pw)
    (tmp_path / "policy").write_text(POLICY)
    node = start_node(tmp_path, "basic", {"htpasswd": tmp_path / "htpasswd",
                                          "policy": tmp_path / "policy", "realm": "fog-basic",
                                          "login_failures": 1000}, realm_self=False)
    try:
        r = requests.get(node.url + "/v2/", timeout=10)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Basic realm="fog-basic"'
        assert requests.get(node.url + "/v2/", auth=READER, timeout=10).status_code == 200
        for repo in ("iot_service", "web_service"):
            skopeo_push(images, PAPER_REFS[repo], node, PAPER_REFS[repo], "--dest-creds",
                        creds("ops"))
        ops = Client(node.url)
        ops.s.auth = OPS
        _, pub = ops.push_image("public/x", "1")
        reader = Client(node.url)
        reader.s.auth = READER
        anon = Client(node.url)

        assert reader.get("/v2/iot_service/manifests/1.0").status_code == 200
        assert_denied(reader.post("/v2/iot_service/blobs/uploads/"))
        assert_denied(reader.delete("/v2/iot_service/manifests/1.0"))
        assert_denied(reader.get("/v2/web_service/manifests/latest"))
        assert_denied(reader.get("/v2/web_service/tags/list"))
        assert reader.get("/v2/_catalog").json()["repositories"] == ["iot_service"]
        assert ops.get("/v2/_catalog").json()["repositories"] == \
            ["iot_service", "public/x", "web_service"]
        r = anon.get("/v2/iot_service/manifests/1.0")
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic ")
        assert anon.get("/v2/public/x/manifests/1").headers.get("Docker-Content-Digest") == pub
        assert anon.post("/v2/public/x/blobs/uploads/").status_code in (401, 403)
        assert anon.get("/v2/_catalog").status_code in (401, 403)
        push = skopeo("copy", "--quiet", "--dest-tls-verify=false", "--dest-creds",
                      creds("reader"), images.ref("web_service:latest"),
                      f"docker://{node.host}/iot_service:evil", check=False)
        assert push.returncode != 0 and "denied" in push.stderr.lower(), push.stderr
        skopeo("inspect", "--tls-verify=false", "--creds", creds("reader"),
               f"docker://{node.host}/iot_service:1.0")
        out = ls(node.url, "--user", creds("reader"))
        assert out.returncode == 0 and out.stdout.splitlines() == [ls_line("iot_service", "1.0")]
        # a Bearer token is no use in Basic mode
        r = requests.get(f"{node.url}/v2/iot_service/manifests/1.0", headers=bearer("x.y.z"),
                         timeout=10)
        assert r.status_code == 401
    finally:
        stop_checked(node)


# ============================================================ 3. attacks

FORGED_ACCESS = repo_access("web_service", "pull", "push") + \
    repo_access("iot_service", "pull", "push", "delete")


def forge(cloud, kind):
    """A token for reader that would grant pull/push on web_service if the
    registry accepted it."""
    key = load_private(cloud.key_path)
    good = lambda **kw: claims_for("reader", FORGED_ACCESS, **kw)
    if kind == "control":
        return sign_es256(key, good())
    if kind == "expired":
        return sign_es256(key, good(exp_in=-90, nbf_in=-400))
    if kind == "expired_long_ago":
        return sign_es256(key, good(exp_in=-86400, nbf_in=-90000))
    if kind == "not_yet_valid":
        return sign_es256(key, good(nbf_in=120, exp_in=600))
    if kind == "no_exp":
        c = good()
        del c["exp"]
        return sign_es256(key, c)
    if kind == "wrong_audience":
        return sign_es256(key, good(aud="registry.example.com"))
    if kind == "audience_list_without_us":
        return sign_es256(key, good(aud=["fog-1", "registry.example.com"]))
    if kind == "wrong_issuer":
        return sign_es256(key, good(iss="evil-issuer"))
    if kind == "other_key_same_kid":
        return sign_es256(ec.generate_private_key(ec.SECP256R1()), good(), kid=cloud.kid)
    if kind == "other_key_own_kid":
        return sign_es256(ec.generate_private_key(ec.SECP256R1()), good())
    if kind == "alg_none":
        return f"{jpart({'alg': 'none', 'typ': 'JWT', 'kid': cloud.kid})}.{jpart(good())}."
    if kind == "alg_none_no_kid":
        return f"{jpart({'alg': 'none', 'typ': 'JWT'})}.{jpart(good())}."
    if kind == "hs256_with_public_key":
        with open(cloud.pub_path, "rb") as f:
            return sign_hs256(f.read(), good(), cloud.kid)
    if kind == "rs256":
        return sign_rs256(good(), cloud.kid)
    if kind == "es256_signature_under_other_alg":
        # a valid ES256 signature, but the header claims ES384
        hdr = {"alg": "ES384", "typ": "JWT", "kid": cloud.kid}
        return sign_es256(key, good(), header=hdr)
    real = token(cloud.url, *READER, ["repository:iot_service:pull"])
    h, p, s = real.split(".")
    if kind == "tampered_payload":
        claims = json.loads(b64u_decode(p))
        claims["access"] = FORGED_ACCESS
        return f"{h}.{jpart(claims)}.{s}"
    if kind == "tampered_header_kid":
        return f"{jpart({'alg': 'ES256', 'typ': 'JWT', 'kid': 'x' + cloud.kid})}.{p}.{s}"
    sig = b64u_decode(s)
    si = f"{jpart({'alg': 'ES256', 'typ': 'JWT', 'kid': cloud.kid})}.{jpart(good())}"
    raw, der = es256_raw_sig(key, si.encode())
    if kind == "signature_truncated":
        return f"{si}.{b64u(raw[:63])}"
    if kind == "signature_extended":
        return f"{si}.{b64u(raw + bytes(1))}"
    if kind == "signature_der":
        return f"{si}.{b64u(der)}"
    if kind == "signature_empty":
        return f"{si}."
    if kind == "signature_zero":
        return f"{si}.{b64u(bytes(64))}"
    if kind == "signature_bitflip":
        bad = bytearray(raw)
        bad[40] ^= 1
        return f"{si}.{b64u(bytes(bad))}"
    if kind == "signature_of_other_token":
        return f"{si}.{b64u(sig)}"
    if kind == "four_parts":
        return f"{si}.{b64u(raw)}.{b64u(raw)}"
    if kind == "garbage":
        return "not-a-jwt"
    raise ValueError(kind)


ATTACKS = ["expired", "expired_long_ago", "not_yet_valid", "no_exp", "wrong_audience",
           "audience_list_without_us", "wrong_issuer", "other_key_same_kid", "other_key_own_kid",
           "alg_none", "alg_none_no_kid", "hs256_with_public_key", "rs256",
           "es256_signature_under_other_alg", "tampered_payload", "tampered_header_kid",
           "signature_truncated", "signature_extended", "signature_der", "signature_empty",
           "signature_zero", "signature_bitflip", "signature_of_other_token", "four_parts",
           "garbage"]


def test_forged_token_control_is_accepted(cloud):
    """The forging machinery is right: the same claims signed with the real
    key are honoured (so each attack below fails only for its one defect),
    including the documented 60 s clock skew."""
    cl = bearer_client(cloud.url, forge(cloud, "control"))
    assert cl.get("/v2/web_service/manifests/latest").status_code == 200
    key = load_private(cloud.key_path)
    for c in (claims_for("reader", FORGED_ACCESS, exp_in=-20, nbf_in=-400),
              claims_for("reader", FORGED_ACCESS, nbf_in=30),
              claims_for("reader", FORGED_ACCESS, aud=["other", "fogport"])):
        r = bearer_client(cloud.url, sign_es256(key, c)).get("/v2/web_service/tags/list")
        assert r.status_code == 200, (c, r.status_code, r.text)


@pytest.mark.parametrize("kind", ATTACKS)
def test_forged_token_is_refused(cloud, kind):
    tok = forge(cloud, kind)
    cl = bearer_client(cloud.url, tok)
    r = cl.get("/v2/web_service/manifests/latest")
    assert_challenge(r, error="invalid_token", scope="repository:web_service:pull")
    assert b"schemaVersion" not in r.content
    r = cl.post("/v2/web_service/blobs/uploads/")
    assert_challenge(r, error="invalid_token", scope="repository:web_service:pull,push")
    assert "Location" not in r.headers
    r = cl.get("/v2/iot_service/tags/list")
    assert_challenge(r, error="invalid_token")


def test_no_token_is_refused(cloud):
    for method, path, scope in (("GET", "/v2/web_service/manifests/latest",
                                 "repository:web_service:pull"),
                                ("POST", "/v2/web_service/blobs/uploads/",
                                 "repository:web_service:pull,push"),
                                ("DELETE", "/v2/web_service/manifests/latest",
                                 "repository:web_service:delete")):
        r = requests.request(method, cloud.url + path, timeout=10)
        assert_challenge(r, error=None, scope=scope, service="fogport")
    r = requests.get(cloud.url + "/v2/web_service/manifests/latest",
                     headers={"Authorization": "Bearer"}, timeout=10)
    assert r.status_code == 401 and b"schemaVersion" not in r.content


def test_scope_escalation_is_cut_down(cloud):
    asked = ["repository:iot_service:pull,push,delete", "repository:web_service:*"]
    for tok in (token(cloud.url, *READER, asked),
                token_post(cloud.url, *READER, scopes=asked).json()["token"]):
        assert access_of(tok) == repo_access("iot_service", "pull") + repo_access("web_service")
        cl = bearer_client(cloud.url, tok)
        assert cl.get("/v2/iot_service/manifests/1.0").status_code == 200
        assert_denied(cl.post("/v2/iot_service/blobs/uploads/"))
        assert_denied(cl.delete(f"/v2/iot_service/manifests/{cloud.pushed['iot_service']}"))
        assert_denied(cl.get("/v2/web_service/manifests/latest"))
        assert_denied(cl.post("/v2/web_service/blobs/uploads/"))
    ops = bearer_client(cloud.url, token(cloud.url, *OPS, ["repository:iot_service:pull"]))
    assert ops.get("/v2/iot_service/manifests/1.0").status_code == 200


@pytest.mark.parametrize("scope", ["repository:a/../b:pull", "repository:../iot_service:pull",
                                   "repository:iot_service/..:pull", "repository:/iot_service:pull",
                                   "repository:*:pull", "repository:iot_*:pull",
                                   "repository:IOT_SERVICE:pull", "repository:iot_service",
                                   "registry:catalog:pull", "bogus:iot_service:pull"])
def test_malformed_scope_is_rejected(cloud, scope):
    r = token_get(cloud.url, scopes=[scope], auth=OPS)
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope", (r.status_code, r.text)
    r = token_post(cloud.url, *OPS, scopes=[scope])
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope", (r.status_code, r.text)


def test_repository_name_tricks(cloud):
    ops_iot = token(cloud.url, *OPS, ["repository:iot_service:pull"])
    reader_iot = token(cloud.url, *READER, ["repository:iot_service:pull"])
    # dot segments in the path never reach another repository
    for path, tok in (("/v2/a/../iot_service/manifests/1.0", ops_iot),
                      ("/v2/iot_service/../web_service/manifests/latest", reader_iot),
                      ("/v2/iot_service/%2e%2e/web_service/manifests/latest", reader_iot),
                      ("/v2/./iot_service/manifests/1.0", ops_iot)):
        status, headers, body = raw_request(cloud.reg.host, "GET", path, headers=bearer(tok))
        assert status in (400, 401, 404), (path, status, body[:200])
        assert b"schemaVersion" not in body, path
        if status == 400:
            assert b"NAME_INVALID" in body, body
    # a token names one repository exactly: no prefixes, suffixes or globs
    cl = bearer_client(cloud.url, ops_iot)
    for other in ("iot_service/x", "iot_servicex", "iot_servic", "x/iot_service"):
        assert_challenge(cl.get(f"/v2/{other}/manifests/1.0"), error="insufficient_scope",
                         scope=f"repository:{other}:pull")
    assert cl.get("/v2/IOT_SERVICE/manifests/1.0").status_code in (400, 401)
    key = load_private(cloud.key_path)
    for name in ("*", "iot_*", "iot_service*", "iot_service/", "IOT_SERVICE", "../iot_service"):
        tok = sign_es256(key, claims_for("reader", repo_access(name, "pull", "push")))
        r = bearer_client(cloud.url, tok).get("/v2/iot_service/manifests/1.0")
        assert_challenge(r, error="insufficient_scope")
        r = bearer_client(cloud.url, tok).get("/v2/web_service/manifests/latest")
        assert_challenge(r, error="insufficient_scope")


def test_blobs_of_unreadable_repositories_stay_hidden(cloud, images):
    """Blobs are linked per repository: a pull token for one repository does
    not reach another's layers by digest, and a cross-repository mount needs
    pull on the source (otherwise a normal upload session starts)."""
    web = set(images.image_blobs(images.descriptor("web_service:latest")["digest"]))
    iot = set(images.image_blobs(images.descriptor("iot_service:1.0")["digest"]))
    web_only, iot_blob = sorted(web - iot)[0], sorted(iot)[0]
    tok = token(cloud.url, *READER, ["repository:scratch/reader:pull,push",
                                     "repository:iot_service:pull",
                                     "repository:web_service:pull"])
    assert access_of(tok) == repo_access("scratch/reader", "pull", "push") + \
        repo_access("iot_service", "pull") + repo_access("web_service")
    cl = bearer_client(cloud.url, tok)
    r = cl.get(f"/v2/iot_service/blobs/{web_only}")
    assert r.status_code == 404 and r.content[:1] == b"{", (r.status_code, r.content[:100])
    assert cl.head(f"/v2/iot_service/blobs/{web_only}").status_code == 404
    base = "/v2/scratch/reader/blobs/uploads/"
    for query in (f"mount={web_only}&from=web_service", f"mount={web_only}&from=iot_service",
                  f"mount={web_only}"):
        r = cl.post(f"{base}?{query}")
        assert r.status_code == 202, (query, r.status_code, r.text)
        assert cl.head(f"/v2/scratch/reader/blobs/{web_only}").status_code == 404, query
    # control: a mount from a repository the caller may pull works
    r = cl.post(f"{base}?mount={iot_blob}&from=iot_service")
    assert r.status_code == 201, (r.status_code, r.text)
    assert cl.get(f"/v2/scratch/reader/blobs/{iot_blob}").content == images.blob(iot_blob)


def test_extreme_time_claims_are_handled(tmp_path):
    """exp/nbf at the ends of the integer range, in tokens the trusted key
    signed: answered (accepted or refused), never a crash or undefined
    behaviour (the sanitizer build aborts on signed overflow)."""
    key_generate(tmp_path / "ts")
    node = start_node(tmp_path, "edge", {"token_keys": tmp_path / "ts.pub",
                                         "token_realm": "http://127.0.0.1:1/auth/token"},
                      realm_self=False)
    key = load_private(tmp_path / "ts.key")
    try:
        for field, value in (("exp", 2**63 - 1), ("exp", 2**63 - 30), ("exp", -2**63),
                             ("nbf", 2**63 - 1), ("nbf", -2**63), ("exp", 2**62)):
            c = claims_for("ops", repo_access("svc", "pull"))
            c[field] = value
            r = requests.get(f"{node.url}/v2/svc/tags/list", timeout=10,
                             headers=bearer(sign_es256(key, c)))
            assert r.status_code in (401, 404), (field, value, r.status_code, r.text)
            if field == "exp" and value < 0 or field == "nbf" and value > 0:
                assert_challenge(r, error="invalid_token")
    except requests.ConnectionError as e:
        raise AssertionError(f"{field}={value} killed the server: {e}\n{node.log()[-1500:]}")
    finally:
        stop_checked(node)


def test_startup_log_names_token_mode(tmp_path):
    """An operator reading the log of a verifying-only fog node must not be
    told it runs without authentication."""
    key_generate(tmp_path / "ts")
    node = start_node(tmp_path, "fog", {"token_keys": tmp_path / "ts.pub",
                                        "token_realm": "http://127.0.0.1:1/auth/token",
                                        "token_service": "fog-1"}, realm_self=False)
    try:
        assert requests.get(node.url + "/v2/", timeout=10).status_code == 401
        line = next(l for l in node.log().splitlines() if "event=serving" in l)
        assert "auth=none" not in line, f"token-mode node logs {line!r}"
    finally:
        stop_checked(node)


def test_token_config_errors_are_clear(tmp_path):
    from conftest import FOGPORT, free_port
    key_generate(tmp_path / "ec")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-out", tmp_path / "rsa.key"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", tmp_path / "rsa.key", "-pubout", "-out",
                    tmp_path / "rsa.pub"], check=True, capture_output=True)
    (tmp_path / "bad.policy").write_text("user:ops * pull\nuser:reader iot_service fly\n")
    cases = [({"token_realm": "http://x/auth/token"}, "token_keys"),
             ({"token_realm": "http://x/auth/token", "token_keys": tmp_path / "rsa.pub"}, "P-256"),
             ({"token_realm": "http://x/auth/token", "token_keys": tmp_path / "ec.pub",
               "policy": tmp_path / "bad.policy"}, "bad.policy:2")]
    for i, (auth, want) in enumerate(cases):
        conf = tmp_path / f"c{i}.conf"
        lines = ["[server]", f"listen = 127.0.0.1:{free_port()}", "[storage]",
                 f"data = {tmp_path / f'd{i}'}", "[auth]"] + [f"{k} = {v}" for k, v in auth.items()]
        conf.write_text("\n".join(lines) + "\n")
        r = subprocess.run([FOGPORT, "serve", "--config", str(conf)], capture_output=True,
                           text=True, timeout=15, env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
        assert r.returncode != 0 and want in r.stderr, (auth, r.returncode, r.stderr)


def _assert_429(r):
    assert r.status_code == 429, (r.request.method, r.url, r.status_code, r.text[:300])
    assert "Retry-After" in r.headers, r.headers
    assert 0 < int(r.headers["Retry-After"]) <= 60
    assert "token" not in (r.json() if r.content[:1] == b"{" else {})


def test_brute_force_is_throttled(tmp_path):
    key_generate(tmp_path / "ts")
    user_set(tmp_path / "htpasswd", "ops", PW["ops"])
    tnode = start_node(tmp_path, "tok", {"htpasswd": tmp_path / "htpasswd",
                                         "token_key": tmp_path / "ts.key"})
    bnode = start_node(tmp_path, "basic", {"htpasswd": tmp_path / "htpasswd"}, realm_self=False)
    wrong = [f"guess-number-{i}" for i in range(6)]
    try:
        # four failures, both forms of the endpoint: not yet blocked
        assert token_get(tnode.url, auth=("ops", wrong[0])).status_code == 401
        assert token_post(tnode.url, "ops", wrong[1]).status_code == 401
        assert token_get(tnode.url, auth=("nobody", wrong[2])).status_code == 401
        assert token_post(tnode.url, "ops", wrong[3]).status_code == 401
        assert token_get(tnode.url, auth=OPS).status_code == 200
        assert token_post(tnode.url, *OPS).status_code == 200
        # the fifth failure closes the door: the right password no longer helps
        assert token_post(tnode.url, "ops", wrong[4]).status_code == 401
        _assert_429(token_get(tnode.url, auth=OPS))
        _assert_429(token_post(tnode.url, *OPS))
        _assert_429(token_get(tnode.url, auth=("ops", wrong[5])))

        # a separate node counts separately; the same in Basic mode on /v2/
        for i in range(5):
            r = requests.get(bnode.url + "/v2/", auth=("ops", wrong[i]), timeout=10)
            assert r.status_code == 401, (i, r.status_code)
        r = requests.get(bnode.url + "/v2/", auth=OPS, timeout=10)
        _assert_429(r)
        _assert_429(requests.get(bnode.url + "/v2/_catalog", auth=OPS, timeout=10))
        # a request without credentials is not a failed login
        assert requests.get(bnode.url + "/v2/", timeout=10).status_code == 401
    finally:
        stop_checked(tnode)
        stop_checked(bnode)
    for node in (tnode, bnode):
        log = node.log()
        assert "login_failed" in log
        for secret in wrong + [PW["ops"]]:
            assert secret not in log, f"{secret} in the {node.data_dir} log"


def test_policy_edits_take_effect_without_restart(tmp_path):
    """The cloud follows edits of its policy file (as of its users file):
    a grant appears within a second or two, a bad edit keeps the last good
    policy (and says so in the log), and each change is audited."""
    d = tmp_path
    key_generate(d / "cloud")
    for user, pw in PW.items():
        user_set(d / "htpasswd", user, pw)
    (d / "policy").write_text(POLICY)
    node = start_node(d, "cloud", {"htpasswd": d / "htpasswd", "policy": d / "policy",
                                   "token_key": d / "cloud.key", "login_failures": 1000},
                      extra="[node]\nid = cloud\nrole = cloud\n")  # a cloud keeps the audit trail
    try:
        scope = ["repository:web_service:pull"]
        assert access_of(token(node.url, *READER, scope)) == repo_access("web_service")

        (d / "policy").write_text(POLICY + "user:reader     web_service       pull\n")
        deadline = time.time() + 5
        while access_of(token(node.url, *READER, scope)) != repo_access("web_service", "pull"):
            assert time.time() < deadline, "the edited policy was not picked up"
            time.sleep(0.2)

        # a bad edit: refused, logged, and the last good policy still decides
        (d / "policy").write_text("user:reader web_service fly\n")
        deadline = time.time() + 5
        while "event=policy_reload_failed" not in node.log():
            token(node.url, *READER, scope)
            assert time.time() < deadline, "the bad policy was not noticed"
            time.sleep(0.2)
        assert access_of(token(node.url, *READER, scope)) == repo_access("web_service", "pull")
        assert access_of(token(node.url, *READER, ["repository:iot_service:pull"])) == \
            repo_access("iot_service", "pull")

        r = requests.get(node.url + "/api/v1/audit", auth=OPS, timeout=10)
        assert r.status_code == 200, r.text
        loaded = [e for e in r.json()["entries"] if e["kind"] == "policy_loaded"]
        assert len(loaded) == 2, loaded  # the start and the good edit, not the bad one
        assert loaded[0]["details"]["policy_digest"] != loaded[1]["details"]["policy_digest"]
    finally:
        stop_checked(node)


def test_passwords_and_tokens_never_logged(cloud):
    token(cloud.url, *OPS, ["repository:iot_service:pull"])
    log = cloud.reg.log()
    assert "event=token_issued" in log
    for pw in PW.values():
        assert pw not in log
    assert "alice-first-pw" not in log and "alice-second-pw" not in log
    assert "eyJ" not in log  # no JWT (header or claims) in the log


# ============================================================ 4. key rotation

def test_key_rotation(tmp_path):
    old_kid = key_generate(tmp_path / "old")
    new_kid = key_generate(tmp_path / "new")
    assert old_kid != new_kid
    assert old_kid == kid_of(load_public(tmp_path / "old.pub"))
    assert oct(os.stat(tmp_path / "old.key").st_mode & 0o777) == "0o600"
    user_set(tmp_path / "htpasswd", "ops", PW["ops"])
    common = {"htpasswd": tmp_path / "htpasswd"}
    old_ts = start_node(tmp_path, "old-ts", dict(common, token_key=tmp_path / "old.key"))
    new_ts = start_node(tmp_path, "new-ts", dict(common, token_key=tmp_path / "new.key"))
    keys = tmp_path / "keys.pem"
    keys.write_text((tmp_path / "old.pub").read_text() + (tmp_path / "new.pub").read_text())
    reg = start_node(tmp_path, "reg", {"token_keys": keys,
                                       "token_realm": f"{new_ts.url}/auth/token"},
                     realm_self=False)
    try:
        scopes = ["repository:svc:pull,push"]
        old_tok = token(old_ts.url, *OPS, scopes)
        new_tok = token(new_ts.url, *OPS, scopes)
        assert decode_jwt(old_tok)[0]["kid"] == old_kid
        assert decode_jwt(new_tok)[0]["kid"] == new_kid
        _, digest = bearer_client(reg.url, new_tok).push_image("svc", "1")
        _, digest2 = bearer_client(reg.url, old_tok).push_image("svc", "2")
        for tok in (old_tok, new_tok):
            r = bearer_client(reg.url, tok).get("/v2/svc/manifests/1")
            assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == digest
        third = sign_es256(ec.generate_private_key(ec.SECP256R1()),
                           claims_for("ops", repo_access("svc", "pull")))
        assert_challenge(bearer_client(reg.url, third).get("/v2/svc/manifests/1"),
                         error="invalid_token")
        # the verifying node serves no tokens of its own
        assert token_get(reg.url, auth=OPS).status_code == 404

        # the old key is retired
        keys.write_text((tmp_path / "new.pub").read_text())
        reg.restart()
        assert_challenge(bearer_client(reg.url, old_tok).get("/v2/svc/manifests/1"),
                         error="invalid_token")
        fresh_old = token(old_ts.url, *OPS, scopes)
        assert_challenge(bearer_client(reg.url, fresh_old).post("/v2/svc/blobs/uploads/"),
                         error="invalid_token")
        r = bearer_client(reg.url, new_tok).get("/v2/svc/manifests/2")
        assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == digest2
    finally:
        for n in (reg, old_ts, new_ts):
            stop_checked(n)
    assert "token_rejected" in reg.log()


# ============================================================ 5. fog nodes

def test_fog_enforces_cloud_decisions(cloud, tmp_path, images):
    realm = f"{cloud.url}/auth/token"
    fog = start_node(tmp_path, "fog-1", {"token_keys": cloud.pub_path, "token_realm": realm,
                                         "token_service": "fog-1"}, realm_self=False)
    try:
        r = requests.get(fog.url + "/v2/", timeout=10)
        assert_challenge(r, realm=realm, service="fog-1")
        # skopeo follows the fog's challenge to the cloud, asking for service fog-1
        ref = PAPER_REFS["iot_service"]
        skopeo_push(images, ref, fog, ref, "--dest-creds", creds("ops"))
        assert re.search(r"event=token_issued remote=\S+ sub=ops service=fog-1", cloud.reg.log())
        info = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", creds("reader"),
                                 f"docker://{fog.host}/{ref}").stdout)
        assert info["Digest"] == images.descriptor(ref)["digest"]
        push = skopeo("copy", "--quiet", "--dest-tls-verify=false", "--dest-creds",
                      creds("reader"), images.ref(ref), f"docker://{fog.host}/iot_service:evil",
                      check=False)
        assert push.returncode != 0 and "denied" in push.stderr.lower(), push.stderr
        skopeo_push(images, PAPER_REFS["web_service"], fog, PAPER_REFS["web_service"],
                    "--dest-creds", creds("ops"))

        fog_tok = token(cloud.url, *READER, ["repository:iot_service:pull,push",
                                             "repository:web_service:pull"], service="fog-1")
        assert decode_jwt(fog_tok)[1]["aud"] == "fog-1"
        cl = bearer_client(fog.url, fog_tok)
        assert cl.get("/v2/iot_service/manifests/1.0").status_code == 200
        assert_denied(cl.post("/v2/iot_service/blobs/uploads/"))
        assert_denied(cl.get("/v2/web_service/manifests/latest"))
        # the fog-1 token is no good on the cloud, and a cloud token none on the fog
        assert_challenge(bearer_client(cloud.url, fog_tok).get("/v2/iot_service/manifests/1.0"),
                         error="invalid_token", service="fogport")
        cloud_tok = token(cloud.url, *OPS, ["repository:iot_service:pull,push",
                                            "repository:web_service:pull"])
        assert decode_jwt(cloud_tok)[1]["aud"] == "fogport"
        for path in ("/v2/iot_service/manifests/1.0", "/v2/web_service/manifests/latest"):
            assert_challenge(bearer_client(fog.url, cloud_tok).get(path), error="invalid_token",
                             service="fog-1")
        assert_challenge(bearer_client(fog.url, cloud_tok).post("/v2/iot_service/blobs/uploads/"),
                         error="invalid_token")
        # unknown services get no token at all; the fog issues none itself
        r = token_get(cloud.url, service="fog-2", auth=OPS)
        assert r.status_code == 400 and r.json()["error"] == "invalid_request"
        assert token_get(fog.url, service="fog-1", auth=OPS).status_code == 404
        # fogport ls against the fog goes through the cloud too
        out = ls(fog.url, "--user", creds("reader"))
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == [ls_line("iot_service", "1.0")]
        out = ls(fog.url, "--user", creds("ops"))
        assert out.stdout.splitlines() == [ls_line("iot_service", "1.0"),
                                           ls_line("web_service", "latest")]
    finally:
        stop_checked(fog)
