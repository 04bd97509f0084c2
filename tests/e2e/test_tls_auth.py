"""HTTPS serving and htpasswd Basic authentication, driven by curl, skopeo
and `fogport ls`. Certificates and bcrypt hashes are made here with openssl
and python's crypt-compatible tooling (htpasswd is not required)."""
import base64
import os
import subprocess

import pytest
import requests

from conftest import FOGPORT, free_port, wait_http
from tokenhelp import make_cert


def bcrypt_hash(password):
    # python3's crypt module (deprecated but present in 3.11) uses libcrypt,
    # which implements bcrypt ($2b$), as htpasswd -B does.
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))


def start(tmp_path, conf_text, scheme="http"):
    port = free_port()
    conf = tmp_path / "fogport.conf"
    conf.write_text(conf_text.format(port=port, data=tmp_path / "data"))
    log = open(tmp_path / "serve.log", "wb")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    proc = subprocess.Popen([FOGPORT, "serve", "--config", str(conf)], stdout=log, stderr=log,
                            env=env)
    return proc, f"{scheme}://127.0.0.1:{port}", port


def stop(proc):
    proc.terminate()
    assert proc.wait(timeout=10) == 0


def test_https_serves_and_clients_verify(tmp_path):
    ca, crt, key = make_cert(str(tmp_path))
    proc, url, port = start(tmp_path, "[server]\nlisten = 127.0.0.1:{port}\n[storage]\n"
                            "data = {data}\n[tls]\ncert = " + crt + "\nkey = " + key + "\n",
                            scheme="https")
    try:
        r = wait_http(url + "/v2/", verify=ca)
        assert r.status_code == 200
        assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        # a client that does not trust our CA must fail the handshake
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url + "/v2/", timeout=5)
        # plain HTTP to the TLS port gets no registry answer
        with pytest.raises(requests.RequestException):
            r = requests.get(f"http://127.0.0.1:{port}/v2/", timeout=5)
            assert r.status_code != 200
            raise requests.RequestException("non-200 as expected")
        # a blob round trip over TLS
        blob = os.urandom(100_000)
        import hashlib
        d = "sha256:" + hashlib.sha256(blob).hexdigest()
        r = requests.post(f"{url}/v2/tls/blobs/uploads/?digest={d}", data=blob, verify=ca,
                          headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201
        r = requests.get(f"{url}/v2/tls/blobs/{d}", verify=ca)
        assert r.status_code == 200 and r.content == blob
        out = subprocess.run([FOGPORT, "ls", "--registry", url, "--cacert", ca],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout == ""  # blobs alone register no service
    finally:
        stop(proc)


def test_htpasswd_basic_auth(tmp_path):
    (tmp_path / "htpasswd").write_text(f"operator:{bcrypt_hash('s3cret-pass')}\n"
                                       f"robot:{bcrypt_hash('other')}\n")
    proc, url, port = start(tmp_path, "[server]\nlisten = 127.0.0.1:{port}\n[storage]\n"
                            "data = {data}\n[auth]\nhtpasswd = " + str(tmp_path / "htpasswd") +
                            "\nrealm = f2c\n")
    try:
        r = wait_http(url + "/v2/")
        assert r.status_code == 401
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert r.headers["WWW-Authenticate"] == 'Basic realm="f2c"'
        assert requests.get(url + "/v2/", auth=("operator", "wrong")).status_code == 401
        assert requests.get(url + "/v2/", auth=("nobody", "s3cret-pass")).status_code == 401
        assert requests.get(url + "/v2/_catalog").status_code == 401
        ok = requests.get(url + "/v2/", auth=("operator", "s3cret-pass"))
        assert ok.status_code == 200
        # the cached verification must not let a different password through
        assert requests.get(url + "/v2/", auth=("operator", "s3cret-pasS")).status_code == 401
        assert requests.get(url + "/v2/", auth=("robot", "other")).status_code == 200
        # a malformed header is a 401, not a crash
        bad = requests.get(url + "/v2/", headers={"Authorization": "Basic !!!notbase64"})
        assert bad.status_code == 401
        # fogport ls authenticates too
        out = subprocess.run([FOGPORT, "ls", "--registry", url, "--user", "operator:s3cret-pass"],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        denied = subprocess.run([FOGPORT, "ls", "--registry", url], capture_output=True, text=True)
        assert denied.returncode != 0 and "401" in denied.stderr
        # the password appears nowhere in the log
        log = (tmp_path / "serve.log").read_text()
        assert "s3cret-pass" not in log and "operator" in log
        # a user removed from the file is refused at once (file re-read on change)
        import time
        time.sleep(0.01)
        (tmp_path / "htpasswd").write_text(f"robot:{bcrypt_hash('other')}\n")
        os.utime(tmp_path / "htpasswd", None)
        assert requests.get(url + "/v2/", auth=("operator", "s3cret-pass")).status_code == 401
    finally:
        stop(proc)


def test_config_errors_are_clear(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[server]\nlisten = 127.0.0.1:1\nlisen = typo\n")
    out = subprocess.run([FOGPORT, "serve", "--config", str(conf)], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode != 0
    assert "unknown setting [server] lisen" in out.stderr and "bad.conf:3" in out.stderr
    conf.write_text("[tls]\ncert = /nonexistent.crt\n")
    out = subprocess.run([FOGPORT, "serve", "--config", str(conf), "--data",
                          str(tmp_path / "d"), "--listen", f"127.0.0.1:{free_port()}"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode != 0 and "cert and key" in out.stderr


def test_data_directory_is_locked(make_registry):
    r = make_registry()
    second = subprocess.run([FOGPORT, "serve", "--listen", f"127.0.0.1:{free_port()}",
                             "--data", r.data_dir], capture_output=True, text=True, timeout=10)
    assert second.returncode != 0 and "in use" in second.stderr
    assert requests.get(r.url + "/v2/").status_code == 200


def test_tls_handshake_deadline_and_old_protocols(tmp_path):
    """The TLS front (src/registry/tls_front.c): connections that never
    finish the handshake (a slowloris) neither block a real client nor stay
    open past the deadline ([server] timeout, at most 10 s); TLS 1.1 is
    refused by the server (protocol_version alert), 1.2 and 1.3 are served."""
    import socket
    import time
    ca, crt, key = make_cert(str(tmp_path))
    proc, url, port = start(tmp_path, "[server]\nlisten = 127.0.0.1:{port}\ntimeout = 2s\n"
                            "[storage]\ndata = {data}\n[tls]\ncert = " + crt + "\nkey = " + key +
                            "\n", scheme="https")
    try:
        assert wait_http(url + "/v2/", verify=ca).status_code == 200
        lazy = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        t0 = time.monotonic()
        # served at once, beside twenty silent connections
        for _ in range(3):
            assert requests.get(url + "/v2/", verify=ca, timeout=5).status_code == 200
        assert time.monotonic() - t0 < 1.5
        for s in lazy:
            s.settimeout(6)
            try:
                assert s.recv(1) == b""  # closed by the server
            except ConnectionResetError:
                pass
        waited = time.monotonic() - t0
        assert 1.5 < waited < 4.5, waited
        for s in lazy:
            s.close()

        def s_client(*args):
            return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                                   "-CAfile", ca, *args], input="", capture_output=True,
                                  text=True, timeout=10)
        # the client is allowed TLS 1.1 (security level 0): the refusal is the server's
        old = s_client("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
        assert old.returncode != 0 and "alert protocol version" in old.stderr, old.stderr
        for v in ("-tls1_2", "-tls1_3"):
            ok = s_client(v)
            assert ok.returncode == 0 and "Verify return code: 0 (ok)" in ok.stdout, ok.stdout
        assert requests.get(url + "/v2/", verify=ca, timeout=5).status_code == 200
    finally:
        stop(proc)
