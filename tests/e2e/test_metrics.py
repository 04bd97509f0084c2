"""Metrics and health (issue 7): GET /metrics in the Prometheus text format,
/healthz and /readyz, on a standalone registry and on the nodes of a
sandbox. Counters are checked by how much they move for known requests,
and every scrape passes `promtool check metrics`."""
import os
import re
import shutil
import socket
import subprocess
import time

import pytest
import requests

from conftest import FOGPORT, Registry
from fedhelp import CaSession, Sandbox, gz_layer, push_image, wait_for
from helpers import get_blob, get_manifest, images, sha256, upload_blob  # noqa: F401 (fixture)

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, frozenset(labels.items())): value} of a scrape."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name, **labels):
    """The sample's value (0 when absent: counters start at zero)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def values(samples, name):
    """{labels dict as a tuple of items: value} of every sample of name."""
    return {tuple(sorted(k[1])): v for k, v in samples.items() if k[0] == name}


def promtool_ok(text):
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, f"promtool check metrics:\n{r.stdout}{r.stderr}"


def scrape(url, **kw):
    r = requests.get(url + "/metrics", timeout=10, **kw)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return r.text, parse(r.text)


needs_promtool = pytest.mark.skipif(not shutil.which("promtool"),
                                    reason="promtool (Debian package prometheus) is missing")


# ------------------------------------------------------------ a standalone registry

@needs_promtool
def test_counters_move_by_what_was_served(registry):
    """A push of N bytes grows the bytes received by at least N and counts an
    upload request; a pull sends them back; a 404 counts under 404; the store
    gauges follow (within the few seconds they are kept)."""
    url = registry.url
    _, before = scrape(url)
    data = os.urandom(300_000)
    digest = upload_blob(registry, "metrics/app", data)
    r = get_blob(registry, "metrics/app", digest)
    assert r.status_code == 200 and r.content == data
    assert get_manifest(registry, "metrics/app", "missing").status_code == 404
    assert requests.get(url + "/v2/metrics/app/blobs/" + "sha256:" + "0" * 64,
                        timeout=10).status_code == 404
    text, after = scrape(url)
    promtool_ok(text)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)
    assert delta("fogport_http_received_bytes_total") >= len(data)
    assert delta("fogport_http_sent_bytes_total") >= len(data)
    assert delta("fogport_http_requests_total", family="uploads", code="201") == 1
    assert delta("fogport_http_requests_total", family="blobs", code="200") == 1
    assert delta("fogport_http_requests_total", family="blobs", code="404") == 1
    assert delta("fogport_http_requests_total", family="manifests", code="404") == 1
    # the histogram counts every request of the family, cumulative to +Inf
    assert delta("fogport_http_request_duration_seconds_count", family="blobs") == 2
    assert value(after, "fogport_http_request_duration_seconds_bucket", family="blobs",
                 le="+Inf") == value(after, "fogport_http_request_duration_seconds_count",
                                     family="blobs")
    # no raw path ever becomes a label
    assert "metrics/app" not in text and digest not in text
    # process metrics, named as the Prometheus clients name them
    assert value(after, "process_resident_memory_bytes") > 0
    assert value(after, "process_open_fds") > 0
    assert abs(value(after, "process_start_time_seconds") - time.time()) < 3600

    def stored():
        s = parse(requests.get(url + "/metrics", timeout=10).text)
        return value(s, "fogport_store_blobs") == 1 and \
            value(s, "fogport_store_blob_bytes") == len(data) and s
    assert wait_for(stored, 8, 0.5), "store gauges did not follow the push"

    for path in ("/healthz", "/readyz"):
        r = requests.get(url + path, timeout=5)
        assert (r.status_code, r.text) == (200, "ok\n"), (path, r.status_code, r.text)
    assert requests.post(url + "/healthz", timeout=5).status_code == 405


def bcrypt_user(path, user, password):
    subprocess.run([FOGPORT, "user", "add", user, "--file", str(path), "--password-stdin"],
                   input=password + "\n", text=True, check=True, capture_output=True)


def basic_registry(tmp_path, name, metrics_access=None):
    bcrypt_user(tmp_path / f"{name}.htpasswd", "operator", "s3cret-pass")
    r = Registry(tmp_path / name)
    conf = tmp_path / f"{name}.conf"
    text = (f"[server]\nlisten = {r.host}\n[storage]\ndata = {r.data_dir}\n"
            f"[auth]\nhtpasswd = {tmp_path / f'{name}.htpasswd'}\n")
    if metrics_access:
        text += f"[metrics]\naccess = {metrics_access}\n"
    conf.write_text(text)
    r.config = conf
    return r.start()


def test_metrics_access(tmp_path):
    """By default /metrics asks for a login (401 with a Basic challenge,
    wrong password refused); [metrics] access = public opens it. The probes
    never ask for credentials."""
    auth = basic_registry(tmp_path, "auth")
    public = basic_registry(tmp_path, "public", "public")
    try:
        r = requests.get(auth.url + "/metrics", timeout=5)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic ")
        assert "fogport_" not in r.text
        assert requests.get(auth.url + "/metrics", auth=("operator", "wrong"),
                            timeout=5).status_code == 401
        scrape(auth.url, auth=("operator", "s3cret-pass"))
        scrape(public.url)
        for reg in (auth, public):
            for path in ("/healthz", "/readyz"):
                assert requests.get(reg.url + path, timeout=5).status_code == 200
            # the registry API itself still asks for a login
            assert requests.get(reg.url + "/v2/", timeout=5).status_code == 401
    finally:
        auth.stop()
        public.stop()
    bad = tmp_path / "bad.conf"
    bad.write_text("[metrics]\naccess = open\n")
    r = subprocess.run([FOGPORT, "serve", "--config", str(bad)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and "public or authenticated" in r.stderr, r.stderr


# ------------------------------------------------------------ a sandbox

def agents_possible():
    return os.geteuid() == 0 and shutil.which("runc")


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    d = tmp_path_factory.mktemp("metrics")
    # only replicated_* is pushed to the fogs: the rest is pulled through
    s = Sandbox(d / "sb", fogs=2, edges=0,
                replication="replicated_* * role:fog on-push\n").up()
    s.env = dict(os.environ, FOGPORT_CONFIG=s.client_json)
    try:
        yield s
    finally:
        s.down()


def node_scrape(sb, node):
    s = CaSession(sb.ca)
    s.auth = sb.admin
    r = s.get(node.url + "/metrics", timeout=10)
    assert r.status_code == 200, (node.id, r.status_code, r.text[:300])
    return r.text, parse(r.text)


def pull_through(node, repo, kind):
    """{source: count} of a node's pull-through counter for kind."""
    return lambda samples: {src: value(samples, "fogport_pull_through_total", kind=kind,
                                       source=src)
                            for src in ("local", "owner", "peer", "parent", "none")}


@needs_promtool
def test_sandbox_pull_through_and_heartbeats(sb):
    """A fog that pulls an image through counts each manifest and blob
    under the holder that delivered it, and what it already holds under
    local; the cloud reports each node's heartbeat age; scrapes take the
    admin's login or a token; a fog is ready."""
    cloud, fog1, fog2 = sb.cloud, sb["fog-1"], sb["fog-2"]
    repo = "metered_service"
    cs = sb.session(cloud, repo, "pull,push")
    layers = [gz_layer(5000), gz_layer(7000)]
    digest, _, config = push_image(cs, cloud, repo, "1", layers, label="metrics")
    blobs = [sha256(b) for b in [config] + layers]

    _, b1 = node_scrape(sb, fog1)
    f1 = sb.session(fog1, repo)
    for _ in range(2):  # the first time from the cloud (the parent), then local
        assert f1.get(f"{fog1.url}/v2/{repo}/manifests/1", timeout=30).status_code == 200
        for d in blobs:
            assert f1.get(f"{fog1.url}/v2/{repo}/blobs/{d}", timeout=30).status_code == 200
    text, a1 = node_scrape(sb, fog1)
    promtool_ok(text)
    m_before, m_after = pull_through(fog1, repo, "manifest")(b1), \
        pull_through(fog1, repo, "manifest")(a1)
    b_before, b_after = pull_through(fog1, repo, "blob")(b1), pull_through(fog1, repo, "blob")(a1)
    assert m_after["parent"] - m_before["parent"] == 1, (m_before, m_after)
    assert m_after["local"] - m_before["local"] == 1, (m_before, m_after)
    assert b_after["parent"] - b_before["parent"] == len(blobs), (b_before, b_after)
    assert b_after["local"] - b_before["local"] == len(blobs), (b_before, b_after)

    # fog-2 takes the blobs from whichever holder is nearest: the counter
    # names the same kind of holder as its log does
    _, b2 = node_scrape(sb, fog2)
    mark = fog2.mark()
    f2 = sb.session(fog2, repo)
    for d in blobs:
        assert f2.get(f"{fog2.url}/v2/{repo}/blobs/{d}", timeout=30).status_code == 200
    _, a2 = node_scrape(sb, fog2)
    before, after = pull_through(fog2, repo, "blob")(b2), pull_through(fog2, repo, "blob")(a2)
    moved = {k: after[k] - before[k] for k in after}
    from_peer = len(fog2.lines(r"event=pulled kind=blob .*source=fog-1\b", since=mark))
    from_parent = len(fog2.lines(r"event=pulled kind=blob .*source=parent\b", since=mark))
    assert from_peer + from_parent == len(blobs)
    assert moved == {"local": 0, "owner": 0, "peer": from_peer, "parent": from_parent,
                     "none": 0}, moved

    # the cloud: every fog's heartbeat is a few seconds old at most
    text, c = node_scrape(sb, cloud)
    promtool_ok(text)
    ages = values(c, "fogport_node_heartbeat_age_seconds")
    assert set(ages) == {(("node", "fog-1"),), (("node", "fog-2"),)}, ages
    assert all(0 <= a <= 10 for a in ages.values()), ages
    assert value(c, "fogport_nodes", health="healthy") == 2
    assert ("fogport_replication_oldest_pending_seconds", frozenset()) in c
    assert value(c, "fogport_info", node="cloud", role="cloud") == 1

    # a token of any scope will do, no credentials will not
    s = CaSession(sb.ca)
    assert s.get(fog1.url + "/metrics", timeout=10).status_code == 401
    s.headers["Authorization"] = "Bearer " + sb.token(fog1.id)
    assert s.get(fog1.url + "/metrics", timeout=10).status_code == 200
    s.headers["Authorization"] = "Bearer not-a-token"
    assert s.get(fog1.url + "/metrics", timeout=10).status_code == 401
    for n in (cloud, fog1, fog2):
        r = requests.get(n.url + "/readyz", verify=sb.ca, timeout=5)
        assert (r.status_code, r.text) == (200, "ok\n"), (n.id, r.status_code, r.text)
        assert value(c if n is cloud else a1 if n is fog1 else a2, "fogport_ready") == 1


def test_replication_counts(sb):
    """A push the rules replicate: each fog counts the task it carried out
    and the bytes it fetched; the cloud counts the tasks done and, once
    nothing is pending, reports no lag."""
    cloud, fogs = sb.cloud, [sb["fog-1"], sb["fog-2"]]
    before = {f.id: node_scrape(sb, f)[1] for f in fogs}
    cs = sb.session(cloud, "replicated_app", "pull,push")
    layer = gz_layer(20000)
    push_image(cs, cloud, "replicated_app", "1", [layer], label="replicated")

    def done(f):
        def check():
            s = node_scrape(sb, f)[1]
            return value(s, "fogport_replicated_tasks_total", result="done") - value(
                before[f.id], "fogport_replicated_tasks_total", result="done") == 1 and s
        return check
    for f in fogs:
        s = wait_for(done(f), 30, 0.5)
        assert s, f.log()[-2000:]
        assert value(s, "fogport_replicated_tasks_total", result="failed") == 0
        assert value(s, "fogport_replicated_bytes_total") - value(
            before[f.id], "fogport_replicated_bytes_total") >= len(layer)
        assert value(s, "fogport_replication_poll_age_seconds") <= 10

    def settled():
        c = node_scrape(sb, cloud)[1]  # kept up to 5 s
        return value(c, "fogport_replication_tasks", state="done") >= 2 and \
            value(c, "fogport_replication_tasks", state="pending") == 0 and c
    c = wait_for(settled, 15, 1.0)
    assert c, "the cloud did not see both tasks done"
    assert value(c, "fogport_replication_oldest_pending_seconds") == 0


def test_fog_not_ready_without_the_cloud_recall_list(sb):
    """A fog that starts without a recall list (none kept, the cloud away)
    serves, is alive, but not ready, and says why; once the cloud answers it
    becomes ready."""
    cloud, fog2 = sb.cloud, sb["fog-2"]
    fog2.stop()
    cloud.stop()
    try:
        os.unlink(os.path.join(fog2.data_dir, "node", "recalls.json"))
    except FileNotFoundError:
        pass
    fog2.start()
    assert requests.get(fog2.url + "/healthz", verify=sb.ca, timeout=5).status_code == 200
    r = requests.get(fog2.url + "/readyz", verify=sb.ca, timeout=5)
    assert r.status_code == 503 and "recall list" in r.text, (r.status_code, r.text)
    cloud.start()

    def ready():
        return requests.get(fog2.url + "/readyz", verify=sb.ca, timeout=5).status_code == 200
    assert wait_for(ready, 30, 0.5), fog2.log()[-2000:]


@pytest.mark.skipif(not agents_possible(), reason="the agent needs root and runc")
def test_agent_service_usage(sb, images):  # noqa: F811
    """A service running on a fog shows up in the fog's scrape with its
    usage, labelled with service and node; the cloud counts its instance."""
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        port = str(so.getsockname()[1])
    sb.push(images, "web_service:latest", sb.cloud)
    r = subprocess.run([FOGPORT, "service", "create", "metered", "--image", "web_service:latest",
                        "--node", "fog-1", "--port", port, "--cmd", "httpd", "--cmd", "-f",
                        "--cmd", "-p", "--cmd", port, "--cmd", "-h", "--cmd", "/www"],
                       capture_output=True, text=True, env=sb.env, timeout=60)
    assert r.returncode == 0, r.stderr
    fog1 = sb["fog-1"]
    try:
        def usage():
            _, s = node_scrape(sb, fog1)
            return value(s, "fogport_service_running", service="metered", node="fog-1") == 1 \
                and value(s, "fogport_service_memory_bytes", service="metered",
                          node="fog-1") > 0 and s
        s = wait_for(usage, 90, 1.0)
        assert s, fog1.log()[-3000:]
        assert value(s, "fogport_service_pids", service="metered", node="fog-1") >= 1
        assert ("fogport_service_cpu_seconds_total",
                frozenset({("service", "metered"), ("node", "fog-1")})) in s
        assert value(s, "fogport_service_restarts_total", service="metered", node="fog-1") == 0

        def counted():
            _, c = node_scrape(sb, sb.cloud)
            return value(c, "fogport_instances", state="running") >= 1
        assert wait_for(counted, 20, 1.0)
    finally:
        subprocess.run([FOGPORT, "service", "delete", "metered"], capture_output=True,
                       env=sb.env, timeout=60)
