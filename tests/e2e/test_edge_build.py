"""The static edge build (`make edge`, build/edge/fogport): one file with no
shared libraries, for edge nodes with little memory (issue 5's budget). It is
the same program: here it runs the edge of a sandbox whose cloud and fog run
the test build (`sandbox up --edge-binary`), joins, serves its registry over
TLS (OpenSSL, libmicrohttpd built without GnuTLS), pulls through its fog
(libcurl built with HTTP(S) only) and runs a service under runc (libarchive
linked in). Its memory is measured by bench/agent, not here."""
import os
import shutil
import subprocess

import pytest
import requests

from conftest import free_port
from fedhelp import Sandbox, cli, instances, layout_blobs_ok, wait_for
from helpers import images  # noqa: F401 (fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EDGE_BIN = os.environ.get("FOGPORT_EDGE_BIN", os.path.join(ROOT, "build", "edge", "fogport"))
AGENT = os.geteuid() == 0 and bool(shutil.which("runc") or shutil.which("crun"))


@pytest.fixture(scope="module")
def sb(tmp_path_factory, images):
    assert os.access(EDGE_BIN, os.X_OK), f"{EDGE_BIN} missing: make edge"
    s = Sandbox(tmp_path_factory.mktemp("edgebuild"), fogs=1, edges=1,
                args=["--edge-binary", EDGE_BIN]).up()
    s.push(images, "web_service:latest", s.cloud)
    yield s
    s.down()



def test_edge_binary_is_one_static_file():
    """No program interpreter and no shared library: nothing to install on
    the edge but the file (and runc)."""
    hdr = subprocess.run(["readelf", "-lW", EDGE_BIN], capture_output=True, text=True,
                         check=True).stdout
    assert "INTERP" not in hdr and "program interpreter" not in hdr
    dyn = subprocess.run(["readelf", "-d", EDGE_BIN], capture_output=True, text=True,
                         check=True).stdout
    assert "NEEDED" not in dyn
    out = subprocess.run([EDGE_BIN, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("fogport ")


def test_the_sandbox_edge_runs_the_static_binary(sb):
    edge = sb["edge-1"]
    assert os.path.realpath(f"/proc/{edge.pid}/exe") == os.path.realpath(EDGE_BIN)
    with open(f"/proc/{edge.pid}/maps") as f:
        libs = {line.split()[-1] for line in f if ".so" in line}
    assert not libs, libs
    # the fog runs the other build
    assert os.path.realpath(f"/proc/{sb['fog-1'].pid}/exe") != os.path.realpath(EDGE_BIN)


def test_static_edge_serves_tls_and_pulls_through_its_fog(sb, tmp_path):
    """skopeo pulls web_service from the edge over TLS with a token; the
    edge fetches it through its fog (libcurl), stores it (SQLite) and serves
    every blob intact."""
    edge = sb["edge-1"]
    r = requests.get(edge.url + "/v2/", verify=sb.ca, timeout=5)
    assert r.status_code == 401 and "Bearer" in r.headers["WWW-Authenticate"]
    out = str(tmp_path / "pulled")
    assert sb.pull(edge, "web_service:latest", out).startswith("sha256:")
    assert layout_blobs_ok(out) >= 3
    assert edge.lines(r"event=request .*path=\"/v2/web_service/blobs/")
    # plain HTTP to the TLS port is refused, not served
    with pytest.raises(requests.RequestException):
        requests.get(edge.url.replace("https://", "http://") + "/v2/", timeout=5).raise_for_status()



@pytest.mark.skipif(not AGENT, reason="the agent needs root and runc or crun")
def test_static_edge_runs_a_service(sb):
    """The agent of the static build unpacks the image (libarchive linked
    in), runs it under runc with its limits, reports it; curl gets the page."""
    port = free_port()
    cli(sb, "service", "create", "web", "--image", "web_service:latest", "--node", "edge-1",
        "--port", port, "--cmd", "httpd", "--cmd", "-f", "--cmd", "-p", "--cmd", port,
        "--cmd", "-h", "--cmd", "/www", "--memory", "32M", "--pids", "32")

    def running():
        got = [i for i in instances(sb, "web") if i["node"] == "edge-1"]
        return got and got[0]["state"] == "running" and got[0].get("usage") and got[0]
    inst = wait_for(running, 60, 0.5)
    assert inst, sb["edge-1"].log()[-3000:]
    assert inst["usage"]["memory_limit"] == 32 << 20
    page = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
    assert page.status_code == 200 and "web_service" in page.text
    assert sb["edge-1"].lines(r"event=layer_unpacked ")
    mark = sb["edge-1"].mark()
    cli(sb, "service", "delete", "web")
    sb["edge-1"].wait_log(r"event=service_removed service=web\b", since=mark, timeout=30)
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{port}/", timeout=2)
