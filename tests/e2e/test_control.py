"""The controller's definitions (issue 6): `fogport service update` (a JSON
merge patch: a change makes the agent replace the instance, no change is a
no-op), node labels ([node] labels, sent with the heartbeat, shown by
`fogport nodes`) and definitions that select nodes by them (a service lands
only on matching nodes; with none matching `ps` and `service show` say so),
and the bounded violations history in control.db.

A sandbox with two fogs in their own network namespaces (a service keeps its
port on either): fog-1 carries zone=north, fog-2 zone=south. Needs root,
runc and `ip netns`."""
import json
import os
import shutil
import time

import pytest
import requests

from fedhelp import (CaSession, Sandbox, check_log_clean, cli, cli_json, instances, running_on,
                     wait_for)
from helpers import images  # noqa: F401 (fixture)
from test_netns import netns_works

pytestmark = pytest.mark.skipif(not shutil.which("runc") or not netns_works(),
                                reason="needs root, runc and `ip netns`")

PORT = 18090
HTTPD = ["--cmd", "httpd", "--cmd", "-f", "--cmd", "-p", "--cmd", str(PORT), "--cmd", "-h",
         "--cmd", "/www"]


@pytest.fixture(scope="module")
def sb(tmp_path_factory, images):  # noqa: F811
    d = tmp_path_factory.mktemp("control")
    s = Sandbox(d, fogs=2, edges=0, args=["--netns"]).up()
    try:
        for fog, zone in (("fog-1", "north"), ("fog-2", "south")):
            node = s[fog]
            node.set_config("node", labels=f"zone={zone},tier=fog")
            node.stop()
            node.start()
        s.push(images, "web_service:latest", s.cloud)
        s.push(images, "iot_service:1.0", s.cloud)
        yield s
        check_log_clean(s)
    finally:
        s.down()


def show(sb, service):
    return json.loads(cli(sb, "service", "show", service).stdout)


def answers(node):
    try:
        return requests.get(f"http://{node.address}:{PORT}/", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_nodes_show_their_labels(sb):
    assert wait_for(lambda: {n["id"]: n.get("labels") for n in cli_json(sb, "nodes")}.get("fog-2")
                    == "zone=south,tier=fog", 15, 0.5), cli(sb, "nodes").stdout
    rows = {l.split()[0]: l.split() for l in cli(sb, "nodes").stdout.splitlines()[1:]}
    assert rows["fog-1"][-2] == "zone=north,tier=fog" and rows["fog-1"][-1] == "up", rows
    # a label the grammar refuses is refused where it is written
    r = cli(sb, "service", "create", "bad", "--image", "web_service:latest", "--role", "fog",
            "--label", "zone north", check=False)
    assert r.returncode != 0 and "--label" in r.stderr, r.stderr


def test_service_lands_only_on_nodes_with_its_labels(sb):
    cli(sb, "service", "create", "south", "--image", "web_service:latest", "--role", "fog",
        "--port", PORT, "--label", "zone=south", "--label", "tier=fog", *HTTPD)
    assert wait_for(lambda: running_on(sb, "south") == ["fog-2"], 60, 0.5), instances(sb, "south")
    assert answers(sb["fog-2"]) and not answers(sb["fog-1"])
    placement = show(sb, "south")["placement"]
    assert placement["nodes"] == ["fog-2"] and "unplaced" not in placement, placement
    time.sleep(3)  # fog-1's agent synced since, and still runs nothing
    assert [i["node"] for i in instances(sb, "south")] == ["fog-2"], instances(sb, "south")

    # no node carries the label: nothing runs, and ps and show say why
    cli(sb, "service", "create", "east", "--image", "web_service:latest", "--role", "fog",
        "--replicas", "1", "--label", "zone=east", *HTTPD)
    rows = instances(sb, "east")
    assert [(i["node"], i["state"]) for i in rows] == [("-", "unplaced")], rows
    assert "zone=east" in rows[0]["reason"], rows
    assert "zone=east" in show(sb, "east")["placement"]["unplaced"]
    assert show(sb, "east")["placement"]["nodes"] == []
    assert "unplaced" in cli(sb, "ps").stdout

    # a preferred label picks among the eligible nodes
    cli(sb, "service", "create", "pref", "--image", "iot_service:1.0", "--role", "fog",
        "--replicas", "1", "--prefer-label", "zone=north")
    assert show(sb, "pref")["placement"]["nodes"] == ["fog-1"], show(sb, "pref")
    for name in ("south", "east", "pref"):
        cli(sb, "service", "delete", name)
    assert wait_for(lambda: not answers(sb["fog-2"]), 20, 0.5)


def test_update_replaces_the_instance_and_no_change_is_a_no_op(sb):
    fog1 = sb["fog-1"]
    cli(sb, "service", "create", "web", "--image", "web_service:latest", "--node", "fog-1",
        "--port", PORT, "--memory", "64M", "--env", "A=1", *HTTPD)
    assert wait_for(lambda: running_on(sb, "web") == ["fog-1"], 60, 0.5), instances(sb, "web")
    assert wait_for(lambda: answers(fog1), 10)
    before = show(sb, "web")
    audit_before = len(cli_json(sb, "audit"))

    # the same value again: nothing changes, nothing restarts
    mark = fog1.mark()
    out = cli(sb, "service", "update", "web", "--memory", "64M").stdout
    assert "unchanged" in out, out
    time.sleep(5)  # two agent syncs
    assert not fog1.lines(r"event=service_(started|removed|deployed) service=web", since=mark)
    after = show(sb, "web")
    assert after["updated"] == before["updated"] and after["digest"] == before["digest"]
    assert len(cli_json(sb, "audit")) == audit_before

    # a new limit: the other fields stay, the agent replaces the instance
    mark = fog1.mark()
    out = cli(sb, "service", "update", "web", "--memory", "96M").stdout
    assert "updated" in out, out
    d = show(sb, "web")
    assert d["memory"] == 96 << 20 and d["env"] == ["A=1"] and d["ports"] == [PORT], d
    assert d["cmd"] == before["cmd"] and d["node"] == "fog-1" and d["digest"] == before["digest"]
    fog1.wait_log(r"event=service_started service=web", since=mark, timeout=30)
    assert wait_for(lambda: answers(fog1), 10)
    audit = [e for e in cli_json(sb, "audit") if e["kind"] == "service_updated"]
    assert audit and audit[-1]["subject"] == "web", audit

    # a new image: resolved to its digest, deployed in place of the old one
    mark = fog1.mark()
    cli(sb, "service", "update", "web", "--image", "iot_service:1.0", "--clear", "cmd",
        "--clear", "ports")
    d = show(sb, "web")
    assert d["image"] == "iot_service:1.0" and d["digest"] != before["digest"], d
    assert "cmd" not in d or d["cmd"] is None, d
    fog1.wait_log(r"event=service_deployed service=web image=iot_service:1.0", since=mark,
                  timeout=60)
    assert wait_for(lambda: [(i["state"], i.get("digest")) for i in instances(sb, "web")] ==
                    [("running", d["digest"])], 30, 0.5), instances(sb, "web")

    # bad updates are refused and change nothing
    r = cli(sb, "service", "update", "web", "--replicas", "2", check=False)
    assert r.returncode != 0 and "replicas need a role" in r.stderr, r.stderr
    r = cli(sb, "service", "update", "nope", "--memory", "1M", check=False)
    assert r.returncode != 0 and "no service nope" in r.stderr, r.stderr
    s = CaSession(sb.ca)
    s.auth = sb.admin
    url = f"{sb.cloud.url}/api/v1/services/web"
    assert s.patch(url, json={"digest": "sha256:" + "0" * 64}, timeout=10).status_code == 400
    assert s.patch(url, json={"name": "other"}, timeout=10).status_code == 400
    assert s.patch(url, data=b"[1]", timeout=10).status_code == 400
    assert show(sb, "web")["digest"] == d["digest"]
    cli(sb, "service", "delete", "web")
    assert wait_for(lambda: not instances(sb, "web"), 30, 0.5), instances(sb, "web")


def test_host_paths_are_refused_by_default(sb):
    r = cli(sb, "service", "create", "hp", "--image", "web_service:latest", "--node", "fog-1",
            "--host-path", "/etc:/www:ro", check=False)
    assert r.returncode != 0 and "host path /etc is not allowed" in r.stderr, r.stderr
    r = cli(sb, "service", "create", "hp", "--image", "web_service:latest", "--node", "fog-1",
            "--host-path", "/etc/../x:/www", check=False)
    assert r.returncode != 0 and "HOST:CONTAINER" in r.stderr, r.stderr
    assert "hp" not in cli(sb, "service", "ls").stdout


def test_violations_are_bounded(sb):
    """[control] violations_max keeps the newest; violations_max_age drops
    the old ones (the cloud's refusals of definitions are violations too)."""
    cloud = sb.cloud
    sb.shared = os.path.join(sb.cloud.dir, "shared")
    os.makedirs(os.path.join(sb.shared, "www"))
    with open(os.path.join(sb.shared, "www", "index.html"), "w") as f:
        f.write("web_service from the host\n")
    cloud.set_config("control", violations_max="3", violations_max_age="6s",
                     allowed_ports=str(PORT), allowed_host_paths=sb.shared)
    cloud.stop()
    cloud.start()
    for i in range(5):
        r = cli(sb, "service", "create", f"v{i}", "--image", "web_service:latest", "--role", "fog",
                "--port", "9999", check=False)
        assert r.returncode != 0 and "violation" in r.stderr, r.stderr
    kept = cli_json(sb, "violations")
    assert [v["service"] for v in kept] == ["v2", "v3", "v4"], kept
    assert wait_for(lambda: cli_json(sb, "violations") == [], 20, 1), cli_json(sb, "violations")
    cloud.wait_log(r"event=control_pruned rows=3", timeout=5)


def test_host_path_allowed_by_the_node_policy_is_mounted(sb):
    """The cloud's [control] allowed_host_paths (set above) lets a
    definition bind a directory below it; the container sees the host's
    files there (read-only)."""
    fog1 = sb["fog-1"]
    cli(sb, "service", "create", "hp", "--image", "web_service:latest", "--node", "fog-1",
        "--port", PORT, "--host-path", f"{sb.shared}/www:/www:ro", *HTTPD)
    assert wait_for(lambda: running_on(sb, "hp") == ["fog-1"], 60, 0.5), instances(sb, "hp")
    assert wait_for(lambda: answers(fog1), 10)
    body = requests.get(f"http://{fog1.address}:{PORT}/", timeout=5).text
    assert body == "web_service from the host\n", body
    # outside the allowed directory: refused
    r = cli(sb, "service", "update", "hp", "--host-path", "/etc:/www:ro", check=False)
    assert r.returncode != 0 and "host path /etc is not allowed" in r.stderr, r.stderr
    cli(sb, "service", "delete", "hp")
    assert wait_for(lambda: not answers(fog1), 20, 0.5)
    # below the allowed directory as written, but a symlink out of it (one a
    # service with it mounted writable could make): the agent, resolving it
    # on the node, does not mount it
    os.symlink("/etc", os.path.join(sb.shared, "out"))
    cli(sb, "service", "create", "hpx", "--image", "web_service:latest", "--node", "fog-1",
        "--port", PORT, "--host-path", f"{sb.shared}/out:/www:ro", *HTTPD)
    assert wait_for(lambda: any("leads to /etc" in (i.get("error") or "")
                                for i in instances(sb, "hpx")), 60, 0.5), instances(sb, "hpx")
    assert running_on(sb, "hpx") == [] and not answers(fog1)
    cli(sb, "service", "delete", "hpx")
