"""podman (a real client nobody here wrote) against a sandbox deployment:
login and pull over TLS with the deployment CA and the token flow, with vfs
storage in a private root so the host's podman state is untouched."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import FOGPORT, have
from helpers import images  # noqa: F401  (session fixture)


def fp(*args):
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    return subprocess.run([FOGPORT, *args], capture_output=True, text=True, check=True, env=env)


@pytest.mark.skipif(not have("podman"), reason="podman not installed (scripts/install-deps)")
@pytest.mark.skipif(os.geteuid() != 0, reason="podman with vfs storage here runs as root")
def test_podman_login_and_pull(tmp_path, images):  # noqa: F811
    d = tmp_path / "sb"
    fp("sandbox", "up", "--dir", str(d), "--fogs", "1", "--edges", "0")
    try:
        topo = json.loads((d / "topology.json").read_text())
        pw = topo["admin"]["password"]
        fog = next(n for n in topo["nodes"] if n["role"] == "fog")
        certs = tmp_path / "certs"
        certs.mkdir()
        (certs / "ca.crt").write_bytes(open(topo["ca"], "rb").read())
        host = fog["registry"].removeprefix("https://")
        # the admin registers the service on the fog (token from the cloud)
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-cert-dir", str(certs),
                        "--dest-creds", f"admin:{pw}", images.ref("web_service:latest"),
                        f"docker://{host}/web_service:latest"], check=True,
                       capture_output=True)
        run = tempfile.mkdtemp(prefix="fp-pod-", dir="/tmp")  # podman wants < 50 chars
        pod = ["podman", "--root", str(tmp_path / "root"), "--runroot", run,
               "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend",
               "file"]
        auth = ["--cert-dir", str(certs), "--authfile", str(tmp_path / "auth.json")]
        bad = subprocess.run(pod + ["login", *auth, "-u", "admin", "--password-stdin", host],
                             input="not-the-password\n", capture_output=True, text=True)
        assert bad.returncode != 0 and "invalid username/password" in bad.stderr
        ok = subprocess.run(pod + ["login", *auth, "-u", "admin", "--password-stdin", host],
                            input=pw + "\n", capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr
        pull = subprocess.run(pod + ["pull", *auth, f"{host}/web_service:latest"],
                              capture_output=True, text=True)
        assert pull.returncode == 0, pull.stderr
        listed = subprocess.run(pod + ["images", "--digests", "--format", "{{.Digest}}"],
                                capture_output=True, text=True, check=True).stdout.split()
        assert images.descriptor("web_service:latest")["digest"] in listed, listed
        # podman asked the fog's own token service (x5c tokens, test_x5c.py)
        log = open(os.path.join(fog["data"], "serve.log")).read()
        assert "event=token_issued" in log and "service=" + fog["id"] in log
    finally:
        fp("sandbox", "down", "--dir", str(d))
        if "run" in locals():
            shutil.rmtree(run, ignore_errors=True)
