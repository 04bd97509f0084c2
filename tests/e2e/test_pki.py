"""The deployment CA: `fogport ca init` and `fogport cert issue` produce a CA,
node certificates and the token key that a TLS + token registry runs with,
and that real clients (curl via requests, skopeo, openssl) verify."""
import os
import subprocess

import pytest
import requests

from conftest import FOGPORT, free_port, wait_http
from helpers import images  # noqa: F401  (session fixture)


def fp(*args, check=True, **kw):
    return subprocess.run([FOGPORT, *args], capture_output=True, text=True, check=check, **kw)


def test_ca_and_certificates(tmp_path):
    ca = tmp_path / "ca"
    fp("ca", "init", "--dir", str(ca))
    for name, mode in (("ca.key", 0o600), ("ca.crt", None), ("token.key", 0o600),
                       ("token.pub", None)):
        assert (ca / name).exists(), name
        if mode:
            assert (ca / name).stat().st_mode & 0o777 == mode
    # an existing CA is never overwritten
    again = fp("ca", "init", "--dir", str(ca), check=False)
    assert again.returncode != 0 and "not overwriting" in again.stderr
    fp("cert", "issue", "--ca", str(ca), "--name", "fog-1", "--dns", "localhost", "--ip",
       "127.0.0.1", "--out", str(tmp_path / "fog-1"))
    v = subprocess.run(["openssl", "verify", "-CAfile", str(ca / "ca.crt"),
                        str(tmp_path / "fog-1.crt")], capture_output=True, text=True)
    assert v.returncode == 0, v.stderr
    text = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "fog-1.crt"), "-noout",
                           "-text"], capture_output=True, text=True, check=True).stdout
    assert "DNS:localhost" in text and "IP Address:127.0.0.1" in text
    assert "TLS Web Server Authentication" in text and "TLS Web Client Authentication" in text
    assert "CA:FALSE" in text
    # a certificate from another CA does not verify against ours
    fp("ca", "init", "--dir", str(tmp_path / "other"))
    fp("cert", "issue", "--ca", str(tmp_path / "other"), "--name", "x", "--ip", "127.0.0.1",
       "--out", str(tmp_path / "x"))
    v = subprocess.run(["openssl", "verify", "-CAfile", str(ca / "ca.crt"), "-partial_chain",
                        str(tmp_path / "x.crt")], capture_output=True, text=True)
    assert v.returncode != 0
    # no names, no certificate
    bad = fp("cert", "issue", "--ca", str(ca), "--name", "n", "--out", str(tmp_path / "n"),
             check=False)
    assert bad.returncode != 0 and not (tmp_path / "n.crt").exists()


def test_tls_token_registry_with_skopeo(tmp_path, images):  # noqa: F811
    ca = tmp_path / "ca"
    fp("ca", "init", "--dir", str(ca))
    fp("cert", "issue", "--ca", str(ca), "--name", "cloud", "--ip", "127.0.0.1", "--out",
       str(tmp_path / "cloud"))
    ht = tmp_path / "htpasswd"
    subprocess.run([FOGPORT, "user", "add", "ops", "--file", str(ht), "--password-stdin"],
                   input="correct horse battery\n", text=True, check=True)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    conf = tmp_path / "cloud.conf"
    conf.write_text(f"""[server]
listen = 127.0.0.1:{port}
[storage]
data = {tmp_path / 'data'}
[tls]
cert = {tmp_path / 'cloud.crt'}
key = {tmp_path / 'cloud.key'}
[auth]
htpasswd = {ht}
token_realm = {url}/auth/token
token_key = {ca / 'token.key'}
""")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([FOGPORT, "serve", "--config", str(conf)], stdout=log, stderr=log,
                            env=env)
    try:
        r = wait_http(url + "/v2/", verify=str(ca / "ca.crt"))
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer ")
        certs = tmp_path / "certs"
        certs.mkdir()
        (certs / "ca.crt").write_bytes((ca / "ca.crt").read_bytes())
        src = f"oci:{images.path}:web_service:latest"
        push = subprocess.run(["skopeo", "copy", "--quiet", "--dest-cert-dir", str(certs),
                               "--dest-creds", "ops:correct horse battery", src,
                               f"docker://127.0.0.1:{port}/web_service:latest"],
                              capture_output=True, text=True)
        assert push.returncode == 0, push.stderr
        # without the deployment CA the client refuses the server
        untrusted = subprocess.run(["skopeo", "inspect", "--creds", "ops:correct horse battery",
                                    f"docker://127.0.0.1:{port}/web_service:latest"],
                                   capture_output=True, text=True)
        assert untrusted.returncode != 0 and "certificate" in untrusted.stderr
        out = fp("ls", "--registry", url, "--cacert", str(ca / "ca.crt"), "--user",
                 "ops:correct horse battery")
        assert out.stdout == '{"name": "web_service", "tags": ["latest"]}\n'
        assert "correct horse battery" not in (tmp_path / "serve.log").read_text()
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_mutual_tls(tmp_path):
    """[tls] client_ca + require_client_cert: a request without a client
    certificate from the deployment's CA is refused (403 DENIED, or the
    handshake fails), one with it is served; joining needs none (the join
    token vouches for a node that has no certificate yet)."""
    ca = tmp_path / "ca"
    fp("ca", "init", "--dir", str(ca))
    fp("cert", "issue", "--ca", str(ca), "--name", "cloud", "--ip", "127.0.0.1", "--out",
       str(tmp_path / "cloud"))
    fp("cert", "issue", "--ca", str(ca), "--name", "fog-1", "--ip", "127.0.0.1", "--out",
       str(tmp_path / "fog-1"))
    fp("ca", "init", "--dir", str(tmp_path / "other"))
    fp("cert", "issue", "--ca", str(tmp_path / "other"), "--name", "fog-x", "--ip", "127.0.0.1",
       "--out", str(tmp_path / "fog-x"))
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    conf = tmp_path / "mtls.conf"
    conf.write_text(f"""[node]
id = cloud
role = cloud
ca = {ca}
[server]
listen = 127.0.0.1:{port}
[storage]
data = {tmp_path / 'data'}
[tls]
cert = {tmp_path / 'cloud.crt'}
key = {tmp_path / 'cloud.key'}
client_ca = {ca / 'ca.crt'}
require_client_cert = true
""")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([FOGPORT, "serve", "--config", str(conf)], stdout=log, stderr=log,
                            env=env)
    try:
        cacert = str(ca / "ca.crt")
        mine = (str(tmp_path / "fog-1.crt"), str(tmp_path / "fog-1.key"))
        r = wait_http(url + "/v2/", verify=cacert)
        assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED"
        # with the deployment's certificate, on a kept-alive connection, twice
        with requests.Session() as s:
            for _ in range(2):
                assert s.get(url + "/v2/", verify=cacert, cert=mine).status_code == 200
        # a certificate from another CA is no better than none
        try:
            foreign = requests.get(url + "/v2/", verify=cacert,
                                   cert=(str(tmp_path / "fog-x.crt"),
                                         str(tmp_path / "fog-x.key")))
            assert foreign.status_code == 403
        except requests.exceptions.SSLError:
            pass
        # the join endpoint is reached without a certificate (400: bad body)
        j = requests.post(url + "/api/v1/join", data=b"{}", verify=cacert)
        assert j.status_code == 400
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
