"""Helpers for the token-authentication end-to-end tests: signing keys and
users made with the fogport CLI, token-mode registries (cloud token service,
fog registries that only verify), the /auth/token endpoint, WWW-Authenticate
challenges, and JWTs forged with python3-cryptography (ES256 with a real or a
foreign key, HS256, RS256, alg none) to attack the registry."""
import base64
import hashlib
import json
import os
import re
import subprocess
import time

import requests
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from conftest import FOGPORT, Registry, wait_http

ENV = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "detect_leaks=0"))


# ---------------------------------------------------------------- fogport CLI

def fogport(*args, input=None, check=True):
    r = subprocess.run([FOGPORT, *[str(a) for a in args]], input=input, capture_output=True,
                       text=True, env=ENV, timeout=60)
    if check:
        assert r.returncode == 0, f"fogport {' '.join(map(str, args))} -> {r.returncode}\n" \
                                  f"{r.stdout}\n{r.stderr}"
    return r


def key_generate(prefix):
    """`fogport key generate --out PREFIX`; returns the printed kid."""
    r = fogport("key", "generate", "--out", prefix)
    return r.stdout.strip()


def user_set(htpasswd, name, password, action="add", check=True):
    return fogport("user", action, name, "--file", htpasswd, "--password-stdin",
                   input=password + "\n", check=check)


# ---------------------------------------------------------------- JOSE

def b64u(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jpart(obj):
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def decode_jwt(token):
    h, p, s = token.split(".")
    return json.loads(b64u_decode(h)), json.loads(b64u_decode(p)), b64u_decode(s)


def load_private(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def load_public(path):
    with open(path, "rb") as f:
        return serialization.load_pem_public_key(f.read())


def kid_of(pub):
    """RFC 7638 JWK thumbprint of an EC P-256 public key."""
    n = pub.public_numbers()
    jwk = json.dumps({"crv": "P-256", "kty": "EC", "x": b64u(n.x.to_bytes(32, "big")),
                      "y": b64u(n.y.to_bytes(32, "big"))}, separators=(",", ":"),
                     sort_keys=True)
    return b64u(hashlib.sha256(jwk.encode()).digest())


def es256_raw_sig(key, signing_input):
    der = key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big"), der


def sign_es256(key, claims, kid=None, header=None):
    """An ES256 JWT signed with `key`; the kid defaults to the key's own."""
    hdr = header or {"alg": "ES256", "typ": "JWT", "kid": kid or kid_of(key.public_key())}
    si = f"{jpart(hdr)}.{jpart(claims)}"
    raw, _ = es256_raw_sig(key, si.encode())
    return f"{si}.{b64u(raw)}"


def sign_hs256(secret, claims, kid):
    si = f"{jpart({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{jpart(claims)}"
    h = hmac.HMAC(secret, hashes.SHA256())
    h.update(si.encode())
    return f"{si}.{b64u(h.finalize())}"


def sign_rs256(claims, kid):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    si = f"{jpart({'alg': 'RS256', 'typ': 'JWT', 'kid': kid})}.{jpart(claims)}"
    sig = key.sign(si.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{si}.{b64u(sig)}"


def claims_for(sub, access, aud="fogport", iss="fogport", exp_in=300, nbf_in=-10, **extra):
    now = int(time.time())
    c = {"iss": iss, "sub": sub, "aud": aud, "exp": now + exp_in, "nbf": now + nbf_in,
         "iat": now, "jti": os.urandom(16).hex(), "access": access}
    c.update(extra)
    return c


def repo_access(name, *actions):
    return [{"type": "repository", "name": name, "actions": list(actions)}]


# ---------------------------------------------------------------- HTTP

def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def challenge(resp):
    """WWW-Authenticate as (scheme, {param: value})."""
    h = resp.headers.get("WWW-Authenticate", "")
    scheme, _, rest = h.partition(" ")
    return scheme, dict(re.findall(r'(\w+)="([^"]*)"', rest))


def token_get(base, service="fogport", scopes=(), auth=None, verify=True):
    params = [("service", service)] + [("scope", s) for s in scopes]
    return requests.get(f"{base}/auth/token", params=params, auth=auth, timeout=15,
                        verify=verify)


def token_post(base, user, password, service="fogport", scopes=(), grant_type="password",
               verify=True):
    form = {"grant_type": grant_type, "username": user, "password": password,
            "service": service, "client_id": "fogport-tests"}
    if scopes:
        form["scope"] = " ".join(scopes)
    return requests.post(f"{base}/auth/token", data=form, timeout=15, verify=verify)


def token(base, user=None, password=None, scopes=(), service="fogport", verify=True):
    """A token from the GET endpoint (anonymous when user is None)."""
    r = token_get(base, service, scopes, (user, password) if user else None, verify=verify)
    assert r.status_code == 200, f"token for {user} {scopes} @{service}: {r.status_code} {r.text}"
    body = r.json()
    assert body["token"] == body["access_token"]
    return body["token"]


# ---------------------------------------------------------------- nodes

def write_config(reg, auth, tls=None, extra=""):
    """The INI file for Registry `reg` (built with config=PATH, not started)."""
    lines = ["[server]", f"listen = {reg.host}", "[storage]", f"data = {reg.data_dir}",
             "[auth]"] + [f"{k} = {v}" for k, v in auth.items()]
    if tls:
        lines += ["[tls]", f"cert = {tls[0]}", f"key = {tls[1]}"]
    with open(reg.config, "w") as f:
        f.write("\n".join(lines) + "\n" + extra)


def start_node(base_dir, name, auth, tls=None, ca=None, realm_self=True, extra=""):
    """Create and start a Registry from an [auth] dict. With realm_self, the
    token_realm is this node's own /auth/token. With tls=(cert, key) the
    node serves HTTPS (its url is https://, verified against ca)."""
    base_dir = str(base_dir)
    reg = Registry(os.path.join(base_dir, name), config=os.path.join(base_dir, name + ".conf"))
    if tls:
        reg.url = f"https://{reg.host}"
    auth = dict(auth)
    if realm_self:
        auth["token_realm"] = f"{reg.url}/auth/token"
    write_config(reg, auth, tls, extra)
    reg.start(wait=False)
    try:
        wait_http(reg.url + "/v2/", verify=ca if ca else True)
    except Exception:
        reg.stop()
        raise RuntimeError(f"{name} did not start:\n{reg.log()[-3000:]}")
    return reg


def stop_checked(reg):
    """Stop a node; it must have stayed up and exit 0 (sanitizer reports
    make the exit status non-zero)."""
    if reg.proc is None:
        return
    alive = reg.proc.poll() is None
    rc = reg.stop()
    assert alive, f"fogport serve died:\n{reg.log()[-4000:]}"
    assert rc == 0, f"fogport serve exited with {rc}:\n{reg.log()[-4000:]}"


def make_cert(d):
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it.
    Returns (ca.crt, tls.crt, tls.key)."""
    os.makedirs(d, exist_ok=True)
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, cwd=d)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=fogport test CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("openssl", "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "tls.crt", "-days", "2", "-extfile", "ext.cnf")
    return os.path.join(d, "ca.crt"), os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
