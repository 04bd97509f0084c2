"""Authorization that survives a cloud outage (x5c): every fog holds a
token-signing certificate from the deployment CA and a copy of the cloud's
policy, users and nodes, serves /auth/token itself and signs with its
certificate chain in the JWT header; registries verify the chain up to the
deployment CA. Driven on sandbox deployments with skopeo and with tokens
forged with python3-cryptography."""
import base64
import datetime
import json
import os
import signal
import subprocess
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import FOGPORT, have
from helpers import images  # noqa: F401  (session fixture)
from tokenhelp import (b64u, bearer, challenge, claims_for, decode_jwt, jpart, load_private,
                       repo_access, sign_es256)

SIGNER_EKU = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # id-kp-documentSigning
ENV = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")


def fp(*args, check=True):
    return subprocess.run([FOGPORT, *args], capture_output=True, text=True, check=check, env=ENV)


class Sandbox:
    def __init__(self, d, fogs=2, edges=1):
        self.dir = d
        fp("sandbox", "up", "--dir", str(d), "--fogs", str(fogs), "--edges", str(edges))
        self.topo = json.loads((d / "topology.json").read_text())
        self.ca = self.topo["ca"]
        self.ca_dir = os.path.dirname(self.ca)
        self.admin = (self.topo["admin"]["user"], self.topo["admin"]["password"])
        self.nodes = {n["id"]: n for n in self.topo["nodes"]}
        self.restarted = []
        # fogs sync the cloud's nodes every 2 s: wait until each knows the
        # nodes that joined after it
        others = {i for i in self.nodes if i != "cloud"}
        for fog in (i for i, n in self.nodes.items() if n["role"] == "fog"):
            deadline = time.time() + 10
            while time.time() < deadline:
                try:
                    with open(self.node_file(fog, "authdata.json")) as f:
                        if {n["id"] for n in json.load(f)["nodes"]} == others:
                            break
                except (OSError, ValueError):
                    pass
                time.sleep(0.1)
            else:
                raise AssertionError(f"{fog} never synced the cloud's nodes")

    def url(self, node):
        return self.nodes[node]["registry"]

    def node_file(self, node, name):
        return os.path.join(self.nodes[node]["data"], "data", "node", name)

    def credential(self, node):
        with open(self.node_file(node, "credential.json")) as f:
            c = json.load(f)
        return c["id"], c["secret"]

    def token(self, issuer, service, scopes=(), auth=None):
        r = requests.get(f"{self.url(issuer)}/auth/token", verify=self.ca, timeout=10,
                         params=[("service", service)] + [("scope", s) for s in scopes],
                         auth=auth or self.admin)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()["token"]

    def get(self, node, token, path="/v2/"):
        return requests.get(self.url(node) + path, headers=bearer(token), verify=self.ca,
                            timeout=10)

    def restart(self, node, log):
        """Stop a node and start it again from its configuration (the
        sandbox's `down` no longer knows it; self.down stops it)."""
        pid = self.nodes[node]["pid"]
        os.kill(pid, signal.SIGTERM)
        for _ in range(200):
            try:
                os.kill(pid, 0)
                time.sleep(0.05)
            except ProcessLookupError:
                break
        proc = subprocess.Popen([FOGPORT, "serve", "--config", self.nodes[node]["config"]],
                                env=ENV, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        self.restarted.append(proc)
        for _ in range(200):
            try:
                requests.get(self.url(node) + "/v2/", verify=self.ca, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        return proc

    def down(self):
        for proc in self.restarted:
            proc.terminate()
            proc.wait(timeout=15)
        fp("sandbox", "down", "--dir", str(self.dir))


@pytest.fixture
def sb(tmp_path):
    s = Sandbox(tmp_path / "sb")
    yield s
    s.down()


def pem_chain(path):
    """Every certificate of a PEM file, in order."""
    text = open(path).read()
    end = "-----END CERTIFICATE-----"
    return [x509.load_pem_x509_certificate((block + end).encode())
            for block in text.split(end) if "BEGIN CERTIFICATE" in block]


def x5c_of(certs):
    return [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
            for c in certs]


def sign_x5c(key, claims, chain, alg="ES256"):
    return sign_es256(key, claims, header={"alg": alg, "typ": "JWT", "x5c": x5c_of(chain)})


def make_signer(ca_cert, ca_key, cn, days=30, not_before=None, eku=(SIGNER_EKU,),
                ou="fogport token signer"):
    """A certificate like the cloud's signer certificates (or, with other
    arguments, unlike them), issued by ca_key; returns (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    nb = not_before or datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    names = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fogport")]
    if ou:
        names.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    names.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    b = (x509.CertificateBuilder().subject_name(x509.Name(names))
         .issuer_name(ca_cert.subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(nb)
         .not_valid_after(nb + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                      False), critical=True))
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=True)
    return b.sign(ca_key, hashes.SHA256()), key


def wait_status(fn, want, timeout=10.0):
    deadline = time.time() + timeout
    status = None
    while time.time() < deadline:
        status = fn().status_code
        if status == want:
            return status
        time.sleep(0.25)
    return status


# ------------------------------------------------------------------ the outage

@pytest.mark.skipif(not have("skopeo"), reason="skopeo is not installed")
def test_fog_serves_tokens_while_the_cloud_is_down(tmp_path, images):  # noqa: F811
    s = Sandbox(tmp_path / "sb", fogs=1, edges=0)
    try:
        certs = tmp_path / "certs"
        certs.mkdir()
        (certs / "ca.crt").write_bytes(open(s.ca, "rb").read())
        cloud = s.url("cloud").removeprefix("https://")
        fog = s.url("fog-1").removeprefix("https://")
        creds = f"{s.admin[0]}:{s.admin[1]}"
        ref = "web_service:latest"
        # register at the cloud, then distribute to the fog (cloud up)
        subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-cert-dir",
                        str(certs), "--dest-creds", creds, images.ref(ref),
                        f"docker://{cloud}/{ref}"], check=True, capture_output=True)
        subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", "--src-cert-dir",
                        str(certs), "--dest-cert-dir", str(certs), "--src-creds", creds,
                        "--dest-creds", creds, f"docker://{cloud}/{ref}",
                        f"docker://{fog}/{ref}"], check=True, capture_output=True)
        # the cloud goes away
        cloud_pid = s.nodes["cloud"]["pid"]
        os.kill(cloud_pid, signal.SIGKILL)
        with pytest.raises(requests.ConnectionError):
            requests.get(s.url("cloud") + "/v2/", verify=s.ca, timeout=3)

        def pull_from_fog(tag):
            out = tmp_path / f"pulled-{tag}"
            r = subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet",
                                "--src-cert-dir", str(certs), "--src-creds", creds,
                                f"docker://{fog}/{ref}", f"oci:{out}:{tag}"],
                               capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            idx = json.loads((out / "index.json").read_text())
            assert idx["manifests"][0]["digest"] == images.descriptor(ref)["digest"]

        pull_from_fog("a")
        bad = subprocess.run(["skopeo", "--insecure-policy", "inspect", "--cert-dir", str(certs),
                              "--creds", f"{s.admin[0]}:wrong-password", f"docker://{fog}/{ref}"],
                             capture_output=True, text=True)
        assert bad.returncode != 0
        # the challenge sends clients to the fog; its tokens carry the chain
        r = requests.get(s.url("fog-1") + "/v2/", verify=s.ca, timeout=10)
        realm = challenge(r)[1]["realm"]
        assert realm == s.url("fog-1") + "/auth/token"
        tok = requests.get(realm, params={"service": "fog-1", "scope": "repository:web_service:pull"},
                           auth=s.admin, verify=s.ca, timeout=10).json()["token"]
        hdr, claims, _ = decode_jwt(tok)
        assert hdr["alg"] == "ES256" and "kid" not in hdr and len(hdr["x5c"]) == 2
        leaf = x509.load_der_x509_certificate(base64.b64decode(hdr["x5c"][0]))
        assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "fog-1"
        assert x509.load_der_x509_certificate(base64.b64decode(hdr["x5c"][1])) == \
            pem_chain(s.ca)[0]
        assert claims["iss"] == "fog-1" and claims["aud"] == "fog-1" and claims["sub"] == "admin"
        log = open(os.path.join(s.nodes["fog-1"]["data"], "serve.log")).read()
        assert "event=token_issued" in log and "sub=admin service=fog-1" in log

        # the fog restarts during the outage: its copy of the auth data on disk suffices
        assert os.stat(s.node_file("fog-1", "authdata.json")).st_mode & 0o777 == 0o600
        s.restart("fog-1", tmp_path / "fog-restart.log")
        pull_from_fog("b")
    finally:
        s.down()


# ------------------------------------------------------------------ certificates and sync

def test_signer_certificate_and_fog_endpoints(sb):
    key_path, crt_path = sb.node_file("fog-1", "signer.key"), sb.node_file("fog-1", "signer.crt")
    assert os.stat(key_path).st_mode & 0o777 == 0o600
    leaf, ca = pem_chain(crt_path)
    assert ca == pem_chain(sb.ca)[0]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "fog-1"
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == \
        "fogport token signer"
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [SIGNER_EKU]
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_agreement and not ku.key_cert_sign
    lifetime = leaf.not_valid_after - leaf.not_valid_before
    assert datetime.timedelta(days=29) < lifetime <= datetime.timedelta(days=31)
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    # a signer certificate is no TLS certificate
    v = subprocess.run(["openssl", "verify", "-CAfile", sb.ca, "-purpose", "sslserver",
                        crt_path], capture_output=True, text=True)
    assert v.returncode != 0, v.stdout
    # edges do not issue tokens and get no signer
    assert not os.path.exists(sb.node_file("edge-1", "signer.crt"))
    assert os.stat(sb.node_file("fog-1", "authdata.json")).st_mode & 0o777 == 0o600

    cloud = sb.url("cloud")
    for path, method in (("/api/v1/authdata", "GET"), ("/api/v1/signer", "POST")):
        def call(auth):
            return requests.request(method, cloud + path, auth=auth, verify=sb.ca, timeout=10,
                                    json={"csr": "x"} if method == "POST" else None)
        assert call(None).status_code == 401
        assert call(sb.admin).status_code == 403          # a user is no fog
        assert call(sb.credential("edge-1")).status_code == 403  # nor an edge
        assert call(("fog-1", "fpn_wrong")).status_code == 401
    r = requests.get(cloud + "/api/v1/authdata", auth=sb.credential("fog-2"), verify=sb.ca,
                     timeout=10)
    assert r.status_code == 200
    data = r.json()
    assert "user:admin" in data["policy"] and data["htpasswd"].startswith("admin:$2")
    assert {n["id"] for n in data["nodes"]} == {"fog-1", "fog-2", "edge-1"}
    assert all(len(n["secret_sha256"]) == 64 and not n["revoked"] for n in data["nodes"])


def test_fog_token_service_authenticates_from_synced_data(sb):
    # users and nodes, checked by the fog against its copy
    assert requests.get(sb.url("fog-1") + "/auth/token", params={"service": "fog-1"},
                        auth=(sb.admin[0], "wrong-password"), verify=sb.ca,
                        timeout=10).status_code == 401
    edge_tok = sb.token("fog-1", "fog-1", ["repository:svc:pull,push"],
                        auth=sb.credential("edge-1"))
    _, c, _ = decode_jwt(edge_tok)
    assert c["sub"] == "edge-1" and c["fogport"]["kind"] == "node"
    assert c["access"] == repo_access("svc", "pull")  # the policy: role:edge * pull
    fog2_tok = sb.token("fog-1", "fog-1", ["repository:fog-2/svc:pull,push"],
                        auth=sb.credential("fog-2"))
    assert decode_jwt(fog2_tok)[1]["access"] == repo_access("fog-2/svc", "pull", "push")
    assert sb.get("fog-1", edge_tok).status_code == 200
    # a fog mints only for itself and its edges, never for the cloud or other fogs
    for service in ("fogport", "cloud", "fog-2"):
        r = requests.get(sb.url("fog-1") + "/auth/token", params={"service": service},
                         auth=sb.admin, verify=sb.ca, timeout=10)
        assert r.status_code == 400, (service, r.text)
    # revoking a node reaches the fog's copy: its login there stops working
    fp("node", "revoke", "edge-1", "--data", os.path.join(sb.nodes["cloud"]["data"], "data"))
    status = wait_status(lambda: requests.get(
        sb.url("fog-1") + "/auth/token", params={"service": "fog-1"},
        auth=sb.credential("edge-1"), verify=sb.ca, timeout=10), 401)
    assert status == 401, "fog-1 still accepts the revoked edge-1's credential"
    # ... and its tokens, though unexpired
    assert sb.get("fog-1", edge_tok).status_code == 401


# ------------------------------------------------------------------ verification

def test_edge_trusts_its_parents_signer_until_revoked(sb, tmp_path):
    # sandbox: edge-1's parent is fog-1 ([auth] token_signers = fog-1 there)
    tok = sb.token("fog-1", "edge-1", ["repository:svc:pull"])
    assert decode_jwt(tok)[0].get("x5c")
    assert sb.get("edge-1", tok).status_code == 200
    # fog-2 is not edge-1's signer: a token it signs for edge-1 is refused
    fog2_key = load_private(sb.node_file("fog-2", "signer.key"))
    fog2_chain = pem_chain(sb.node_file("fog-2", "signer.crt"))
    forged = sign_x5c(fog2_key, claims_for("admin", repo_access("svc", "pull"), aud="edge-1",
                                           iss="fog-2"), fog2_chain)
    assert sb.get("edge-1", forged).status_code == 401
    # the same construction with fog-1's signer is accepted (the forgery is sound)
    fog1_key = load_private(sb.node_file("fog-1", "signer.key"))
    fog1_chain = pem_chain(sb.node_file("fog-1", "signer.crt"))
    good = sign_x5c(fog1_key, claims_for("admin", repo_access("svc", "pull"), aud="edge-1",
                                         iss="fog-1"), fog1_chain)
    assert sb.get("edge-1", good).status_code == 200
    # revoke fog-1 at the cloud: edge-1 learns it at its next poll (2 s)
    fp("node", "revoke", "fog-1", "--data", os.path.join(sb.nodes["cloud"]["data"], "data"))
    assert wait_status(lambda: sb.get("edge-1", tok), 401) == 401, \
        "edge-1 still honours the revoked fog-1's signer"
    assert sb.get("edge-1", good).status_code == 401
    log = open(os.path.join(sb.nodes["edge-1"]["data"], "serve.log")).read()
    assert "signer fog-1 is revoked" in log or "node fog-1 is revoked" in log
    # the edge remembers across a restart while the cloud is unreachable
    os.kill(sb.nodes["cloud"]["pid"], signal.SIGKILL)
    sb.restart("edge-1", tmp_path / "edge-restart.log")
    assert sb.get("edge-1", good).status_code == 401


def test_forged_x5c_tokens_are_refused(sb, tmp_path):
    fog1_key = load_private(sb.node_file("fog-1", "signer.key"))
    fog1_chain = pem_chain(sb.node_file("fog-1", "signer.crt"))
    ca_cert = pem_chain(sb.ca)[0]
    ca_key = load_private(os.path.join(sb.ca_dir, "ca.key"))
    access = repo_access("svc", "pull")

    def at_fog(token):
        return sb.get("fog-1", token).status_code

    # control: a well-formed token of fog-1's signer is accepted at fog-1
    assert at_fog(sign_x5c(fog1_key, claims_for("admin", access, aud="fog-1", iss="fog-1"),
                           fog1_chain)) == 200
    # ... and so is a signer certificate for fog-1 made with the deployment CA's key
    cert, key = make_signer(ca_cert, ca_key, "fog-1")
    assert at_fog(sign_x5c(key, claims_for("admin", access, aud="fog-1", iss="fog-1"),
                           [cert, ca_cert])) == 200

    # a chain from another CA (that also names itself in x5c)
    other = tmp_path / "other-ca"
    fp("ca", "init", "--dir", str(other))
    o_cert = pem_chain(str(other / "ca.crt"))[0]
    o_key = load_private(str(other / "ca.key"))
    cert, key = make_signer(o_cert, o_key, "fog-1")
    assert at_fog(sign_x5c(key, claims_for("admin", access, aud="fog-1", iss="fog-1"),
                           [cert, o_cert])) == 401
    # a TLS certificate of the deployment (fog-1's own) used as a signer
    tls_key = load_private(sb.node_file("fog-1", "tls.key"))
    tls_chain = pem_chain(sb.node_file("fog-1", "tls.crt"))
    assert at_fog(sign_x5c(tls_key, claims_for("admin", access, aud="fog-1", iss="fog-1"),
                           tls_chain)) == 401
    # CA-issued, but without the signer usage, or with TLS usages added, or expired
    for kw in ({"eku": (ExtendedKeyUsageOID.SERVER_AUTH,)},
               {"eku": (SIGNER_EKU, ExtendedKeyUsageOID.CLIENT_AUTH)},
               {"eku": ()},
               {"ou": None},
               {"not_before": datetime.datetime.now(datetime.timezone.utc) -
                datetime.timedelta(days=40)}):
        cert, key = make_signer(ca_cert, ca_key, "fog-1", **kw)
        assert at_fog(sign_x5c(key, claims_for("admin", access, aud="fog-1", iss="fog-1"),
                               [cert, ca_cert])) == 401, kw
    # signed by another key than the leaf's
    stranger = ec.generate_private_key(ec.SECP256R1())
    assert at_fog(sign_x5c(stranger, claims_for("admin", access, aud="fog-1", iss="fog-1"),
                           fog1_chain)) == 401
    # iss not the leaf's CN: a fog cannot pass for the cloud's issuer or another node
    for iss in ("fogport", "cloud", "fog-2"):
        assert at_fog(sign_x5c(fog1_key, claims_for("admin", access, aud="fog-1", iss=iss),
                               fog1_chain)) == 401, iss
    # a fog minting for the cloud, or for a sibling fog
    for_cloud = sign_x5c(fog1_key, claims_for("admin", access, aud="fogport", iss="fog-1"),
                         fog1_chain)
    assert sb.get("cloud", for_cloud).status_code == 401
    for_fog2 = sign_x5c(fog1_key, claims_for("admin", access, aud="fog-2", iss="fog-1"),
                        fog1_chain)
    assert sb.get("fog-2", for_fog2).status_code == 401
    # expired token, wrong audience
    assert at_fog(sign_x5c(fog1_key, claims_for("admin", access, aud="fog-1", iss="fog-1",
                                                exp_in=-120), fog1_chain)) == 401
    assert at_fog(sign_x5c(fog1_key, claims_for("admin", access, aud="fog-2", iss="fog-1"),
                           fog1_chain)) == 401
    # algorithm confusion with an x5c header: none, HS256 (keyed with the leaf)
    claims = claims_for("admin", access, aud="fog-1", iss="fog-1")
    x5c = x5c_of(fog1_chain)
    none = f"{jpart({'alg': 'none', 'typ': 'JWT', 'x5c': x5c})}.{jpart(claims)}."
    assert at_fog(none) == 401
    leaf_der = fog1_chain[0].public_bytes(serialization.Encoding.DER)
    si = f"{jpart({'alg': 'HS256', 'typ': 'JWT', 'x5c': x5c})}.{jpart(claims)}"
    mac = hmac.HMAC(leaf_der, hashes.SHA256())
    mac.update(si.encode())
    assert at_fog(f"{si}.{b64u(mac.finalize())}") == 401
    # a malformed chain
    bad = f"{jpart({'alg': 'ES256', 'typ': 'JWT', 'x5c': ['bm90IGEgY2VydA==']})}." \
          f"{jpart(claims)}.{b64u(b'x' * 64)}"
    assert at_fog(bad) == 401
    log = open(os.path.join(sb.nodes["fog-1"]["data"], "serve.log")).read()
    for reason in ("x5c chain does not verify", "not a token-signing certificate",
                   "token issuer not trusted", "token algorithm is not ES256",
                   "token signature does not verify"):
        assert reason in log, reason


def test_fog_without_a_signer_sends_clients_to_the_cloud(tmp_path):
    """A cloud without a CA gives fogs no signer certificate: the fog then
    points its challenge at the cloud's token service and its own answers
    503, and the cloud's tokens work there as before."""
    from conftest import Registry
    from nodehelp import node_config, node_token, write_ini
    from tokenhelp import key_generate, token, user_set

    base = str(tmp_path)
    htpasswd = os.path.join(base, "htpasswd")
    user_set(htpasswd, "ops", "a long password")
    key_generate(os.path.join(base, "token"))
    cloud = Registry(os.path.join(base, "cloud"), config=os.path.join(base, "cloud.conf"))
    write_ini(cloud.config, {
        "node": {"id": "cloud", "role": "cloud"},
        "server": {"listen": cloud.host},
        "storage": {"data": cloud.data_dir},
        "auth": {"htpasswd": htpasswd, "token_realm": f"{cloud.url}/auth/token",
                 "token_key": os.path.join(base, "token.key")},
    })
    cloud.start()
    fog = Registry(os.path.join(base, "fog-1"), config=os.path.join(base, "fog.conf"))
    try:
        node_config(fog, "fog-1", "fog", cloud.url, None,
                    join_token=node_token(cloud, "fog", "fog-1"))
        fog.start()
        r = requests.get(fog.url + "/v2/", timeout=10)
        assert challenge(r)[1]["realm"] == f"{cloud.url}/auth/token"
        r = requests.get(fog.url + "/auth/token", params={"service": "fog-1"},
                         auth=("ops", "a long password"), timeout=10)
        assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable"
        tok = token(cloud.url, "ops", "a long password", service="fog-1")
        assert requests.get(fog.url + "/v2/", headers=bearer(tok), timeout=10).status_code == 200
    finally:
        fog.stop()
        cloud.stop()
