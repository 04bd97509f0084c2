"""The cloud's dashboard (/ui/, docs/monitoring.md): behind the API's login,
its files served with security headers and ETags, the cloud's only; and the
page itself in headless chromium (tests/ui/dashboard.mjs, playwright-core):
every node with its role and state, a service with its tags, live CPU
charts and the event feed. The screenshot is kept in
build/artifacts/ui-dashboard.png.

One module-wide sandbox (a cloud, two fogs, an edge). As root with runc the
agents run a service, so usage flows and the charts move; otherwise the
chart check is skipped and the rest still runs."""
import hashlib
import json
import os
import shutil
import subprocess
import time

import pytest
import requests

from conftest import FOGPORT, ROOT
from fedhelp import Sandbox, check_log_clean, cli, wait_for
from helpers import images  # noqa: F401 (fixture)

UI_TESTS = os.path.join(ROOT, "tests", "ui")
ARTIFACTS = os.path.join(ROOT, "build", "artifacts")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
AGENTS = os.geteuid() == 0 and bool(shutil.which("runc"))
ASSETS = {"index.html": "text/html", "app.js": "text/javascript", "charts.js": "text/javascript",
          "topology.js": "text/javascript", "dom.js": "text/javascript",
          "style.css": "text/css", "favicon.svg": "image/svg+xml"}
VIEWER = ("viewer", "viewer-password-1")


@pytest.fixture(scope="module")
def sb(tmp_path_factory, images):
    # replication=None: the sandbox's own rules (every service to every fog)
    d = tmp_path_factory.mktemp("ui")
    # an operator who may pull iot_service only (the sandbox keeps a policy
    # file and users that are already there)
    with open(d / "policy", "w") as f:
        f.write("user:admin * pull,push,delete,catalog\nuser:viewer iot_service pull\n"
                "role:fog {self}/* pull,push\nrole:fog * pull\nrole:edge * pull\n")
    subprocess.run([FOGPORT, "user", "add", VIEWER[0], "--file", str(d / "htpasswd"),
                    "--password-stdin"], input=VIEWER[1] + "\n", text=True, check=True,
                   capture_output=True)
    s = Sandbox(d, fogs=2, edges=1, replication=None).up()
    for ref in ["iot_service:1.0", "web_service:latest"]:
        s.push(images, ref, s.cloud)
    yield s
    cli(s, "service", "delete", "iot", check=False)
    s.down()
    check_log_clean(s)


def get(sb, path, node=None, **kw):
    return requests.get((node or sb.cloud).url + path, verify=sb.ca, timeout=10,
                        allow_redirects=False, **kw)


def test_dashboard_needs_the_login(sb):
    """A browser without a login gets a Basic challenge for the fogport
    realm; wrong credentials are refused the same way; /ui goes to /ui/."""
    r = get(sb, "/ui/")
    assert r.status_code == 401, r.status_code
    assert r.headers["WWW-Authenticate"] == 'Basic realm="fogport"'
    assert "<html" not in r.text
    r = get(sb, "/ui/app.js", auth=("admin", "not-the-password"))
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic ")
    r = get(sb, "/ui/", auth=("nobody", "x"))
    assert r.status_code == 401
    r = get(sb, "/ui")
    assert r.status_code == 301 and r.headers["Location"] == "/ui/"
    r = get(sb, "/ui/", auth=sb.admin)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert '<script type="module" src="app.js">' in r.text
    # the page reads the API with the same login
    assert get(sb, "/api/v1/catalog").status_code == 401


def test_assets_carry_security_headers_and_etags(sb):
    for name, ctype in ASSETS.items():
        r = get(sb, "/ui/" + name, auth=sb.admin)
        assert r.status_code == 200, (name, r.status_code)
        assert r.headers["Content-Type"].startswith(ctype), (name, r.headers["Content-Type"])
        assert r.headers["Content-Security-Policy"] == "default-src 'self'"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "no-cache" in r.headers["Cache-Control"] and "private" in r.headers["Cache-Control"]
        etag = r.headers["ETag"]
        # strong, and the SHA-256 of what was sent
        assert etag == '"sha256-%s"' % hashlib.sha256(r.content).hexdigest(), (name, etag)
        again = get(sb, "/ui/" + name, auth=sb.admin, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
        for inm in ['W/' + etag, '"sha256-0", ' + etag, "*"]:  # weak match, a list, any
            assert get(sb, "/ui/" + name, auth=sb.admin,
                       headers={"If-None-Match": inm}).status_code == 304, inm
        other = get(sb, "/ui/" + name, auth=sb.admin, headers={"If-None-Match": '"sha256-0"'})
        assert other.status_code == 200 and other.content == r.content
    head = requests.head(sb.cloud.url + "/ui/app.js", auth=sb.admin, verify=sb.ca, timeout=10)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) > 1000
    assert get(sb, "/ui/", auth=sb.admin).content == get(sb, "/ui/index.html", auth=sb.admin).content
    for bad in ["/ui/nothere.js", "/ui/%2E%2E/ui/app.js", "/ui/.app.js", "/ui/x/app.js"]:
        assert get(sb, bad, auth=sb.admin).status_code == 404, bad
    r = requests.post(sb.cloud.url + "/ui/app.js", auth=sb.admin, verify=sb.ca, timeout=10)
    assert r.status_code == 405


def test_only_the_cloud_serves_the_dashboard(sb):
    for node in [sb["fog-1"], sb["edge-1"]]:
        r = get(sb, "/ui/", node=node, auth=sb.admin)
        assert r.status_code == 404, (node.id, r.status_code)
        assert get(sb, "/api/v1/catalog", node=node, auth=sb.admin).status_code == 404


def test_catalog_api_lists_services_with_tags(sb):
    r = get(sb, "/api/v1/catalog", auth=sb.admin)
    assert r.status_code == 200, r.text
    repos = {x["name"]: x["tags"] for x in r.json()["repositories"]}
    assert repos == {"iot_service": ["1.0"], "web_service": ["latest"]}
    assert r.json()["truncated"] is False
    # the access policy filters it: viewer may pull iot_service only
    r = get(sb, "/api/v1/catalog", auth=VIEWER)
    assert r.status_code == 200 and r.json()["repositories"] == [
        {"name": "iot_service", "tags": ["1.0"]}], r.text
    assert get(sb, "/api/v1/catalog", auth=(VIEWER[0], "wrong")).status_code == 401
    assert requests.post(sb.cloud.url + "/api/v1/catalog", auth=sb.admin, verify=sb.ca,
                         timeout=10).status_code == 405


def test_a_service_the_caller_may_not_see_is_not_named_to_them(sb):
    """A user who may neither pull nor push a definition's image gets 404
    for PATCH and DELETE as for GET, not a refusal naming the image."""
    cli(sb, "service", "create", "hidden", "--image", "web_service:latest", "--node", "fog-9")
    try:
        url = sb.cloud.url + "/api/v1/services/hidden"
        for r in [requests.get(url, auth=VIEWER, verify=sb.ca, timeout=10),
                  requests.patch(url, json={}, auth=VIEWER, verify=sb.ca, timeout=10),
                  requests.patch(url, json={"memory": 1 << 20}, auth=VIEWER, verify=sb.ca,
                                 timeout=10),
                  requests.delete(url, auth=VIEWER, verify=sb.ca, timeout=10)]:
            assert r.status_code == 404, (r.request.method, r.status_code, r.text)
            assert "web_service" not in r.text, (r.request.method, r.text)
        # still there, unchanged, for the admin
        r = requests.get(url, auth=sb.admin, verify=sb.ca, timeout=10)
        assert r.status_code == 200 and r.json()["memory"] == 0, r.text
    finally:
        cli(sb, "service", "delete", "hidden", check=False)


def test_an_edge_cannot_claim_a_fogs_service(sb):
    """The cloud adopts a claim of an always-on service (the fogs' hand-over
    while it was away) from a fog only: an edge reporting one as claimed
    does not get it placed there (nor its definition), nor moves it off
    its node."""
    cli(sb, "service", "create", "pinned", "--image", "web_service:latest", "--node", "fog-9",
        "--always-on")
    try:
        edge = sb["edge-1"]
        with open(os.path.join(edge.data_dir, "node", "credential.json")) as f:
            c = json.load(f)
        claim = {"url": edge.url, "capacity": 0, "used": 0,
                 "instances": [{"service": "pinned", "state": "running", "claimed": True}]}
        url = sb.cloud.url + "/api/v1/services/pinned"
        for _ in range(20):  # placement runs each second; the edge's own heartbeats overwrite
            r = requests.post(sb.cloud.url + "/api/v1/heartbeat", json=claim,
                              auth=(c["id"], c["secret"]), verify=sb.ca, timeout=10)
            assert r.status_code == 200, r.text
            time.sleep(0.3)
            placed = requests.get(url, auth=sb.admin, verify=sb.ca, timeout=10).json()
            # it stays on fog-9 (not joined: listed nowhere), neither on the
            # edge nor moved off to another fog
            assert placed["placement"]["nodes"] == [], placed
        r = requests.get(sb.cloud.url + "/api/v1/agent/desired", auth=(c["id"], c["secret"]),
                         verify=sb.ca, timeout=10)
        assert r.status_code == 200 and "pinned" not in r.text, r.text
    finally:
        cli(sb, "service", "delete", "pinned", check=False)


def node_args(sb):
    return ",".join(f"{n.id}:{n.role}" for n in sb.nodes.values())


@pytest.fixture(scope="module")
def playwright():
    """tests/ui/node_modules from the committed lock file (scripts/check runs
    npm ci; a developer's first run here does it too)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing: scripts/install-deps installs chromium")
    if not os.path.isdir(os.path.join(UI_TESTS, "node_modules", "playwright-core")):
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=UI_TESTS,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"npm ci in tests/ui:\n{r.stdout}\n{r.stderr}"


def test_dashboard_in_a_browser(sb, playwright, tmp_path):
    """The page as an operator sees it: no console errors, every node with
    its role and state (table and graph), iot_service with its tag, a CPU
    chart that moves (root: agents run a service), and the event feed with
    the service's start and a recall."""
    events = ["recall"]
    if AGENTS:
        cli(sb, "service", "create", "iot", "--image", "iot_service:1.0", "--node", "edge-1",
            "--memory", "32M")
        got = wait_for(lambda: any(i["state"] == "running" and i.get("usage") for i in json.loads(
            cli(sb, "ps", "--json").stdout)), 60, 0.5)
        assert got, cli(sb, "ps").stdout
        events.append("started")
    cli(sb, "recall", "web_service:latest", "--reason", "ui test")
    args = ["node", os.path.join(UI_TESTS, "dashboard.mjs"), sb.cloud.url, *sb.admin,
            str(tmp_path), "--nodes", node_args(sb), "--service", "iot_service:1.0"]
    if AGENTS:
        args.append("--charts")
    for e in events:
        args += ["--event", e]
    r = subprocess.run(args, capture_output=True, text=True, timeout=180,
                       env=dict(os.environ, CHROMIUM=CHROMIUM))
    shot = tmp_path / "ui-dashboard.png"
    if shot.exists():
        os.makedirs(ARTIFACTS, exist_ok=True)
        shutil.copy(shot, os.path.join(ARTIFACTS, "ui-dashboard.png"))
    assert r.returncode == 0, f"dashboard.mjs -> {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    assert seen["ok"] and {n["id"] for n in seen["seen"]["nodes"]} == set(sb.nodes)
    assert seen["seen"]["live"] == "live", seen["seen"]["live"]  # the event stream, not polling
    assert shot.stat().st_size > 10000
    if not AGENTS:
        pytest.skip("charts: the agents need root and runc (everything else was checked)")
