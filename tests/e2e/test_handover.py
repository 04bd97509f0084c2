"""Always-on hand-over (issue 6, item 5, cloud side): the cloud notices a fog
that stops sending heartbeats (suspect after 3 s, dead after 6 s), places its
always-on services on the nearest healthy fog, whose agent starts them (the
image pulled through its own registry); /api/v1/resolve's endpoint, `fogport
ps`, the events and the audit trail follow. A fog that comes back does not
run a second copy: the service is no longer in its desired state, so its
agent removes the instance, also one it adopted after a restart.

Every fog is its own host (`sandbox up --netns`): a service keeps its port
when it moves. Needs root, runc and `ip netns`."""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest
import requests

from fedhelp import Sandbox, check_log_clean, cli, cli_json, running_on, wait_for
from helpers import images  # noqa: F401 (fixture)
from test_netns import netns_works

pytestmark = pytest.mark.skipif(not shutil.which("runc") or not netns_works(),
                                reason="needs root, runc and `ip netns`")

PORT = 18080  # every fog has its own address: the same port on each


@pytest.fixture(scope="module")
def sb(tmp_path_factory, images):  # noqa: F811
    d = tmp_path_factory.mktemp("handover")
    s = Sandbox(d, fogs=2, edges=0, args=["--netns"]).up()
    try:
        s.push(images, "web_service:latest", s.cloud)
        yield s
        check_log_clean(s)
    finally:
        s.down()


def endpoint(node):
    return f"http://{node.address}:{PORT}/"


def answers(url):
    try:
        r = requests.get(url, timeout=2)
        return r.status_code == 200 and "web_service" in r.text
    except requests.RequestException:
        return False


def resolved(sb):
    s = sb.session(sb.cloud, "web_service")
    r = s.get(sb.cloud.url + "/api/v1/resolve/web_service", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["endpoint"]


def node_state(sb, node_id):
    rows = {l.split()[0]: l.split() for l in sb.nodes_cli().stdout.splitlines()[1:] if l.strip()}
    return rows[node_id][-1]


def crash(node):
    """The node's host fails: its fogport, its shims and its containers die."""
    node.kill9()
    root = os.path.join(node.data_dir, "agent", "runtime")
    subprocess.run(["runc", "--root", root, "kill", "web", "KILL"], capture_output=True)
    wait_for(lambda: not answers(endpoint(node)), 10)


def test_always_on_service_moves_to_a_healthy_fog_and_back_never_twice(sb):
    fog1, fog2 = sb["fog-1"], sb["fog-2"]
    cli(sb, "service", "create", "web", "--image", "web_service:latest", "--node", "fog-1",
        "--port", PORT, "--always-on", "--cmd", "httpd", "--cmd", "-f", "--cmd", "-p", "--cmd",
        PORT, "--cmd", "-h", "--cmd", "/www")
    listed = cli(sb, "service", "ls").stdout
    assert "fog-1+" in listed, listed
    assert json.loads(cli(sb, "service", "show", "web").stdout)["always_on"] is True
    assert wait_for(lambda: running_on(sb, "web") == ["fog-1"], 60, 0.5), cli_json(sb, "ps")
    assert wait_for(lambda: answers(endpoint(fog1)), 10)
    assert resolved(sb) == endpoint(fog1)

    # fog-1 fails
    crash(fog1)
    t0 = time.time()
    assert wait_for(lambda: node_state(sb, "fog-1") == "suspect", 10, 0.2), sb.nodes_cli().stdout
    t_suspect = time.time() - t0
    assert wait_for(lambda: node_state(sb, "fog-1") == "dead", 15, 0.2), sb.nodes_cli().stdout
    t_dead = time.time() - t0
    sb.cloud.wait_log(r"event=handover service=web from=fog-1 to=fog-2", timeout=5)
    # fog-2's agent pulls the image through its registry and starts it
    assert wait_for(lambda: answers(endpoint(fog2)), 20, 0.2), fog2.log()[-3000:]
    t_serving = time.time() - t0
    print(f"\nfog-1 suspect after {t_suspect:.1f}s, dead after {t_dead:.1f}s, "
          f"web answers on fog-2 {t_serving:.1f}s after the failure "
          f"({t_serving - t_dead:.1f}s after detection)")
    assert t_serving - t_dead < 10
    assert wait_for(lambda: resolved(sb) == endpoint(fog2), 10, 0.5), resolved(sb)
    ps = [i for i in cli_json(sb, "ps") if i["service"] == "web"]
    assert {(i["node"], i["state"]) for i in ps} == {("fog-1", "unknown"), ("fog-2", "running")}, ps
    # the hand-over is an event and an audit entry
    ev = [e for e in cli_json(sb, "events") if e["service"] == "web" and e["event"] == "handover"]
    assert ev and ev[-1]["node"] == "fog-2" and ev[-1]["from"] == "fog-1", ev
    audit = [e for e in cli_json(sb, "audit") if e["kind"] == "handover"]
    assert audit and audit[-1]["subject"] == "web" and audit[-1]["actor"] == "controller", audit
    assert audit[-1]["details"]["from"] == "fog-1" and audit[-1]["details"]["to"] == "fog-2"
    assert cli(sb, "audit", "verify", "--config", sb.cloud.config).returncode == 0

    # fog-1 comes back: it does not start web again (it is not in its
    # desired state any more) and removes what is left of it
    mark = fog1.mark()
    fog1.start()
    assert wait_for(lambda: node_state(sb, "fog-1") == "up", 10, 0.2)
    assert wait_for(lambda: running_on(sb, "web") == ["fog-2"] and
                    [i["node"] for i in cli_json(sb, "ps") if i["service"] == "web"] == ["fog-2"],
                    20, 0.5), cli_json(sb, "ps")
    assert not fog1.lines(r"event=service_started service=web", since=mark)
    assert not answers(endpoint(fog1))
    # stable: web stays where it runs now
    time.sleep(3)
    assert running_on(sb, "web") == ["fog-2"]
    assert resolved(sb) == endpoint(fog2)


def test_partitioned_fog_stops_its_copy_after_adopting_it(sb):
    """fog-2 is cut off (SIGSTOP) while web keeps running in its container:
    the cloud moves web to fog-1. fog-2's fogport then restarts: its agent
    adopts the container that still runs, learns web is not its own any more
    and stops it, so one copy runs."""
    fog1, fog2 = sb["fog-1"], sb["fog-2"]
    assert wait_for(lambda: running_on(sb, "web") == ["fog-2"], 30, 0.5)
    mark2 = fog2.mark()
    fog2.send(signal.SIGSTOP)
    try:
        sb.cloud.wait_log(r"event=handover service=web from=fog-2 to=fog-1", timeout=20)
        assert wait_for(lambda: answers(endpoint(fog1)), 20, 0.2), fog1.log()[-3000:]
        assert answers(endpoint(fog2))  # the stale copy, still up while fog-2 is cut off
    finally:
        fog2.kill9()
    fog2.start()
    fog2.wait_log(r"event=service_adopted service=web", since=mark2, timeout=20)
    fog2.wait_log(r"event=service_removed service=web", since=mark2, timeout=20)
    assert wait_for(lambda: not answers(endpoint(fog2)), 10)
    assert wait_for(lambda: [i["node"] for i in cli_json(sb, "ps") if i["service"] == "web"] ==
                    ["fog-1"], 20, 0.5), cli_json(sb, "ps")
    assert answers(endpoint(fog1)) and resolved(sb) == endpoint(fog1)
    cli(sb, "service", "delete", "web")
