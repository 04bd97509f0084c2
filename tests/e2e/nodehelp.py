"""Helpers for the node-identity end-to-end tests: a deployment (CA from
`fogport ca init`, htpasswd, policy), cloud nodes ([node] role = cloud,
HTTPS with a certificate from the CA, token service keyed by CA/token.key),
fogs and edges that join the cloud on their first start, the `fogport node`
CLI, raw POST /api/v1/join requests (optionally from another loopback source
address) and certificate requests made with python3-cryptography."""
import http.client
import json
import os
import shutil
import ssl
import time

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import Registry
from tokenhelp import fogport, user_set


def write_ini(path, sections):
    """sections: {"node": {"id": "fog-1", ...}, ...}; None values are left out."""
    lines = []
    for name, kv in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {v}" for k, v in kv.items() if v is not None]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


class Deployment:
    """A CA directory and the users/policy the clouds of a test run with."""

    def __init__(self, base, users, policy):
        self.base = str(base)
        os.makedirs(self.base, exist_ok=True)
        self.ca_dir = os.path.join(self.base, "ca")
        fogport("ca", "init", "--dir", self.ca_dir)
        self.ca_crt = os.path.join(self.ca_dir, "ca.crt")
        # skopeo reads every *.crt / *.key of a cert dir: only the CA in it
        self.certs = os.path.join(self.base, "certs")
        os.makedirs(self.certs)
        shutil.copy(self.ca_crt, os.path.join(self.certs, "ca.crt"))
        fogport("cert", "issue", "--ca", self.ca_dir, "--name", "cloud", "--ip", "127.0.0.1",
                "--out", os.path.join(self.base, "cloud-tls"))
        self.cloud_tls = (os.path.join(self.base, "cloud-tls.crt"),
                          os.path.join(self.base, "cloud-tls.key"))
        self.htpasswd = os.path.join(self.base, "htpasswd")
        for user, pw in users.items():
            user_set(self.htpasswd, user, pw)
        self.policy = os.path.join(self.base, "policy")
        with open(self.policy, "w") as f:
            f.write(policy)


def https_registry(base, name):
    reg = Registry(os.path.join(str(base), name), config=os.path.join(str(base), name + ".conf"))
    reg.url = f"https://{reg.host}"
    return reg


def wait_up(reg, ca, timeout=20.0):
    """Wait for a node started with start(wait=False) to answer over HTTPS
    (verified with ca); raise with its log if it exits or never answers."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if reg.proc.poll() is not None:
            rc = reg.proc.returncode
            reg.proc = None
            raise RuntimeError(f"{reg.data_dir} exited {rc} before serving:\n{reg.log()[-3000:]}")
        try:
            return requests.get(reg.url + "/v2/", timeout=1, verify=ca)
        except requests.RequestException as e:
            last = e
            time.sleep(0.05)
    raise RuntimeError(f"{reg.url} did not answer: {last}\n{reg.log()[-3000:]}")


def start_cloud(dep, base, name="cloud", **auth_extra):
    """A cloud node: [node] role = cloud with the deployment's CA directory
    (so token_key = CA/token.key), HTTPS, htpasswd, policy, token_realm its
    own /auth/token. auth_extra adds [auth] keys (login_failures, ...)."""
    reg = https_registry(base, name)
    auth = {"htpasswd": dep.htpasswd, "policy": dep.policy,
            "token_realm": f"{reg.url}/auth/token"}
    auth.update(auth_extra)
    write_ini(reg.config, {
        "node": {"id": "cloud", "role": "cloud", "ca": dep.ca_dir},
        "server": {"listen": reg.host},
        "storage": {"data": reg.data_dir},
        "tls": {"cert": dep.cloud_tls[0], "key": dep.cloud_tls[1]},
        "auth": auth,
    })
    reg.start(wait=False)
    wait_up(reg, dep.ca_crt)
    return reg


def node_config(reg, node_id, role, cloud_url, cacert, join_token=None):
    write_ini(reg.config, {
        "node": {"id": node_id, "role": role, "cloud": cloud_url, "join_token": join_token,
                 "cacert": cacert},
        "server": {"listen": reg.host},
        "storage": {"data": reg.data_dir},
    })


def start_node(base, node_id, role, cloud_url, cacert, join_token=None):
    """A fog or edge with the given [node] settings, started and answering
    over HTTPS (verified with cacert)."""
    reg = https_registry(base, node_id)
    node_config(reg, node_id, role, cloud_url, cacert, join_token)
    reg.start(wait=False)
    wait_up(reg, cacert)
    return reg


def run_node_once(reg, timeout=30):
    """Start a node that is expected NOT to come up; returns (rc, log)."""
    reg.start(wait=False)
    try:
        rc = reg.proc.wait(timeout=timeout)
    except Exception:
        reg.stop()
        raise AssertionError(f"{reg.data_dir} kept running:\n{reg.log()[-3000:]}")
    reg.proc = None
    return rc, reg.log()


def credential(reg):
    with open(os.path.join(reg.data_dir, "node", "credential.json")) as f:
        return json.load(f)


# ---------------------------------------------------------------- fogport node

def node_token(cloud, role, node_id=None, ttl=None):
    args = ["node", "token", "create", "--role", role, "--data", cloud.data_dir]
    if node_id:
        args += ["--id", node_id]
    if ttl:
        args += ["--ttl", ttl]
    tok = fogport(*args).stdout.strip()
    assert tok.startswith("fpj_") and len(tok) > 30, tok
    return tok


def node_list(cloud):
    """{id: [role, created, ("revoked")]} from `fogport node list`."""
    out = fogport("node", "list", "--data", cloud.data_dir).stdout
    rows = {}
    for line in out.splitlines():
        f = line.split()
        rows[f[0]] = f[1:]
    return rows


def node_revoke(cloud, node_id, check=True):
    return fogport("node", "revoke", node_id, "--data", cloud.data_dir, check=check)


# ---------------------------------------------------------------- join API

def make_csr(cn, dns=(), ips=("127.0.0.1",)):
    """(PEM certificate request, private key) for CN and SANs."""
    import ipaddress
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i))
                                               for i in ips]
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    if names:
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    csr = b.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key


class Resp:
    def __init__(self, status, headers, body):
        self.status_code, self.headers, self.content = status, headers, body

    def json(self):
        return json.loads(self.content)

    @property
    def text(self):
        return self.content.decode(errors="replace")

    def codes(self):
        try:
            return [e.get("code") for e in self.json()["errors"]]
        except (ValueError, KeyError, TypeError):
            return []


def post_join(cloud_reg, cacert, body, source="127.0.0.1"):
    """POST /api/v1/join with body (dict -> JSON, or raw bytes/str) from the
    given loopback source address."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    ctx = ssl.create_default_context(cafile=cacert)
    conn = http.client.HTTPSConnection("127.0.0.1", cloud_reg.port, context=ctx, timeout=15,
                                       source_address=(source, 0))
    try:
        conn.request("POST", "/api/v1/join", body=body,
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def join(cloud_reg, cacert, token, node_id, csr=None, source="127.0.0.1"):
    if csr is None:
        csr, _ = make_csr(node_id, dns=(node_id,))
    return post_join(cloud_reg, cacert, {"token": token, "id": node_id, "csr": csr},
                     source=source)


def load_cert(pem):
    """The first certificate of a PEM chain."""
    if isinstance(pem, str):
        pem = pem.encode()
    return x509.load_pem_x509_certificate(pem)  # reads the first PEM block


def cert_names(cert):
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return cn, san.get_values_for_type(x509.DNSName), \
        [str(i) for i in san.get_values_for_type(x509.IPAddress)]
