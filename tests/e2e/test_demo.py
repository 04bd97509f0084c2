"""The README's main job: `fogport sandbox up --demo` (what scripts/demo
runs) registers the paper's services at the cloud, lists them in the paper's
format, replicates them to every fog, has the edge pull one through its fog
and, as root with runc, runs them until `sandbox down`, which leaves nothing
behind. Without containers (FOGPORT_SANDBOX_LOOPBACK=1, what a machine
without root or runc gets) scripts/demo still registers and distributes."""
import json
import os
import re
import shutil
import signal
import subprocess
import time

import requests

from conftest import FOGPORT, ROOT
from fedhelp import fogport, pid_alive

PAPER = ('{"name": "iot_service", "tags": ["1.0"]}\n'
         '{"name": "monitoring_service", "tags": ["1.0"]}\n'
         '{"name": "web_service", "tags": ["latest"]}\n')
ENV = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")


def can_run_services():
    """What the demo (and the sandbox's agents) need to run containers."""
    return os.geteuid() == 0 and bool(shutil.which("runc") or shutil.which("crun"))


def check_steps(out):
    """Every step line carries the time since the start, never going back."""
    times = [float(m) for m in re.findall(r"^\[\s*(\d+\.\d\d)s\] ", out, re.M)]
    assert len(times) >= 8, out
    assert times == sorted(times), times


def check_distributed(out):
    """The federated catalog the demo printed: every fog holds every
    service, and the edge, which pulled iot_service through fog-1, holds it."""
    held = {}
    for line in out.splitlines():
        if line.startswith('{"name"') and '"nodes"' in line:
            entry = json.loads(line)
            held[entry["name"]] = set(entry["nodes"])
    for svc in ("iot_service", "monitoring_service", "web_service"):
        assert {"cloud", "fog-1", "fog-2", "fog-3"} <= held.get(svc, set()), out[-3000:]
    assert "edge-1" in held["iot_service"], out[-3000:]


def check_demo_output(out):
    """What the demo printed: the paper's listing, its steps, the catalog."""
    assert PAPER in out
    check_steps(out)
    check_distributed(out)


def check_nothing_left(sbdir, topo):
    """Nodes, containers (their shims and processes), mounts, namespaces."""
    for n in topo.get("nodes", []):
        assert not pid_alive(n["pid"]), f"{n['id']} still running"
    leftover = subprocess.run(["pgrep", "-f", str(sbdir)], capture_output=True, text=True)
    assert leftover.stdout == "", leftover.stdout
    assert str(sbdir) not in open("/proc/self/mountinfo").read()
    for n in topo.get("nodes", []):
        root = os.path.join(n["data"], "data", "agent", "runtime")
        if os.path.isdir(root) and shutil.which("runc"):
            listed = subprocess.run(["runc", "--root", root, "list", "-q"], capture_output=True,
                                    text=True)
            assert listed.stdout.strip() == "", f"{n['id']}: {listed.stdout}"
    if topo.get("netns"):
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert not any(n.get("netns", "-") in names for n in topo["nodes"]), names
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        assert topo["netns"]["bridge"] not in links, links


def test_demo_main_job(tmp_path):
    """`sandbox up --demo` returns with everything running: web_service
    always-on on every fog (one definition per fog, each its own port, so a
    dead fog's copy has somewhere to go), iot_service on the edge,
    monitoring_service on fog-1 polling the three web_services; every
    instance runs, every web_service answers from this host, the dashboard
    URL is printed and the admin password is not. When a fog stops, its
    web_service moves to another fog and answers there."""
    sbdir = tmp_path / "sandbox"
    r = subprocess.run([FOGPORT, "sandbox", "up", "--demo", "--dir", str(sbdir)],
                       capture_output=True, text=True, timeout=300, env=ENV)
    topo, stopped = {}, None
    try:
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        topo = json.loads((sbdir / "topology.json").read_text())
        check_demo_output(r.stdout)
        cloud = topo["nodes"][0]["registry"]
        assert f"{cloud}/ui/" in r.stdout and "topology.json" in r.stdout
        assert topo["admin"]["password"] not in r.stdout + r.stderr
        # the dashboard answers there, behind the admin's login
        ui = requests.Session()
        ui.trust_env = False
        ui.verify = topo["ca"]
        assert ui.get(f"{cloud}/ui/", timeout=10).status_code == 401
        page = ui.get(f"{cloud}/ui/", auth=("admin", topo["admin"]["password"]), timeout=10)
        assert page.status_code == 200 and "text/html" in page.headers["Content-Type"], page
        assert "<script" in page.text
        if not can_run_services():
            assert "services are not run" in r.stdout
            return
        assert topo.get("netns"), "with root and runc every node is its own host"
        cenv = dict(ENV, FOGPORT_CONFIG=str(sbdir / "client.json"))

        def cli(*args):
            return fogport(*args, env=cenv, timeout=30).stdout
        # the demo returned only once all of it runs: no waiting here
        ps = json.loads(cli("ps", "--json"))
        where = sorted((i["service"], i["node"], i["state"]) for i in ps)
        assert where == [("iot_service", "edge-1", "running"),
                         ("monitoring_service", "fog-1", "running"),
                         ("web_service-1", "fog-1", "running"),
                         ("web_service-2", "fog-2", "running"),
                         ("web_service-3", "fog-3", "running")], ps
        defs = {d["name"]: d for d in json.loads(cli("service", "ls", "--json"))}
        for k in (1, 2, 3):
            d = defs[f"web_service-{k}"]
            assert d["always_on"] is True and d["node"] == f"fog-{k}", d
            assert d["image"] == "web_service:latest"
        assert not defs["iot_service"].get("always_on"), defs["iot_service"]
        addr = {n["id"]: n["address"] for n in topo["nodes"]}
        http = requests.Session()
        http.trust_env = False  # node addresses are on this host's bridge
        for i in ps:
            if not i["service"].startswith("web_service"):
                continue
            k = int(i["service"].rsplit("-", 1)[1])
            assert i["endpoint"] == f"http://{addr[i['node']]}:{8080 + k}/", i
            page = http.get(i["endpoint"], timeout=5)
            assert page.status_code == 200 and "<h1>web_service</h1>" in page.text
            assert i["endpoint"] in r.stdout  # the demo fetched it too
            assert i["service"] + " " in r.stdout  # in its instance table
        deadline = time.time() + 20
        while True:
            iot = cli("logs", "iot_service", "--node", "edge-1")
            mon = cli("logs", "monitoring_service", "--node", "fog-1")
            ups = [f"UP   http://{addr[f'fog-{k}']}:{8080 + k}/" for k in (1, 2, 3)]
            if ("sensor=edge-1 seq=" in iot and all(u in mon for u in ups)) \
                    or time.time() > deadline:
                break
            time.sleep(1)
        assert "sensor=edge-1 seq=" in iot, iot[-2000:]
        for u in ups:
            assert u in mon, mon[-2000:]
        # the limits the demo gave, as the agents enforce and report them
        # (an agent reports usage from its first sample on: wait for it)
        deadline = time.time() + 30
        while True:
            ps = json.loads(cli("ps", "--json"))
            if all("usage" in i for i in ps) or time.time() > deadline:
                break
            time.sleep(1)
        for i in ps:
            assert "usage" in i, i
            assert i["usage"]["pids_limit"] > 0 and i["usage"]["memory_limit"] > 0, i
            if i["service"].startswith("web_service"):
                assert i["usage"]["memory_limit"] == 64 << 20 and i["usage"]["pids_limit"] == 64
        # hand-over stays meaningful: fog-2 stops answering (its agent and
        # heartbeats frozen), and its web_service moves to another fog,
        # where its own port is free, and answers there
        fog2 = next(n for n in topo["nodes"] if n["id"] == "fog-2")
        os.kill(fog2["pid"], signal.SIGSTOP)
        stopped = fog2["pid"]
        moved, deadline = None, time.time() + 60
        while not moved and time.time() < deadline:
            time.sleep(1)
            moved = next((i for i in json.loads(cli("ps", "--json"))
                          if i["service"] == "web_service-2" and i["node"] != "fog-2"
                          and i["state"] == "running"), None)
        assert moved, cli("ps")
        assert moved["endpoint"] == f"http://{addr[moved['node']]}:8082/", moved
        page = http.get(moved["endpoint"], timeout=5)
        assert page.status_code == 200 and "<h1>web_service</h1>" in page.text
    finally:
        if stopped:
            os.kill(stopped, signal.SIGCONT)
        subprocess.run([FOGPORT, "sandbox", "down", "--dir", str(sbdir)], capture_output=True,
                       env=ENV)
    check_nothing_left(sbdir, topo)


def test_demo_script_loopback(tmp_path):
    """scripts/demo --no-wait as a machine without containers runs it
    (FOGPORT_SANDBOX_LOOPBACK=1): nodes on loopback ports, agents off, the
    services registered, listed and distributed but not run."""
    d = tmp_path / "demo"
    sbdir = d / "sandbox"
    env = dict(ENV, FOGPORT_SANDBOX_LOOPBACK="1")
    r = subprocess.run([os.path.join(ROOT, "scripts", "demo"), "--no-wait", "--dir", str(d)],
                       capture_output=True, text=True, timeout=300, env=env)
    release = os.path.join(ROOT, "build", "fogport")
    topo = {}
    try:
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        topo = json.loads((sbdir / "topology.json").read_text())
        check_demo_output(r.stdout)
        assert "services are not run" in r.stdout
        assert "netns" not in topo
        assert {n["address"] for n in topo["nodes"]} == {"127.0.0.1"}
        for n in topo["nodes"]:
            conf = open(os.path.join(n["data"], "fogport.conf")).read()
            assert "[agent]" not in conf, n["id"]
        ps = subprocess.run([release, "ps", "--json"], capture_output=True, text=True,
                            env=dict(env, FOGPORT_CONFIG=str(sbdir / "client.json")))
        assert ps.returncode == 0 and json.loads(ps.stdout) == [], ps.stdout + ps.stderr
    finally:
        subprocess.run([release, "sandbox", "down", "--dir", str(sbdir)], capture_output=True)
    check_nothing_left(sbdir, topo)
