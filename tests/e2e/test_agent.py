"""The agent (issue 5): the cloud holds service definitions, fog and edge
agents pull the images through their own registries, unpack them, and run
them under runc with the definition's limits; `fogport ps` shows every
instance with its usage, `fogport logs` its output.

One module-wide sandbox (a cloud, one fog, an edge under it, agents on both,
the paper's images registered at the cloud) runs every test here. Services
listen on the node's network (host networking), so each test picks free
ports. Needs root and runc (skipped otherwise)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest
import requests

from conftest import FOGPORT
from fedhelp import CaSession, Sandbox, pid_alive, push_image, wait_for
from helpers import images  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"),
                                reason="the agent needs root and runc")

PAPER = ["iot_service:1.0", "monitoring_service:1.0", "web_service:latest"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MALLORY = ("mallory", "mallory-password-1")


@pytest.fixture(scope="module")
def sb(tmp_path_factory, images):
    d = tmp_path_factory.mktemp("agent")
    # a second operator who may push only under mallory/ (the sandbox keeps
    # a policy file and users that are already there)
    with open(d / "policy", "w") as f:
        f.write("user:admin * pull,push,delete,catalog\n"
                "user:mallory mallory/* pull,push\n"
                "role:fog {self}/* pull,push\nrole:fog * pull\nrole:edge * pull\n")
    subprocess.run([FOGPORT, "user", "add", MALLORY[0], "--file", str(d / "htpasswd"),
                    "--password-stdin"], input=MALLORY[1] + "\n", text=True, check=True,
                   capture_output=True)
    s = Sandbox(d, fogs=1, edges=1).up()
    env = dict(os.environ, FOGPORT_CONFIG=s.client_json)
    s.env = env
    for ref in PAPER:
        s.push(images, ref, s.cloud)
    yield s
    for sv in cli(s, "service", "ls", "--json", check=False).get("json") or []:
        cli(s, "service", "delete", sv["name"], check=False)
    s.down()


def cli(sb, *args, check=True, timeout=60):
    r = subprocess.run([FOGPORT, *map(str, args)], capture_output=True,
                       text=True, env=sb.env, timeout=timeout)
    if check:
        assert r.returncode == 0, f"fogport {' '.join(map(str, args))} -> {r.returncode}\n" \
                                  f"{r.stdout}\n{r.stderr}"
    out = {"rc": r.returncode, "out": r.stdout, "err": r.stderr}
    if "--json" in args and r.returncode == 0:
        out["json"] = json.loads(r.stdout)
    return out


def instances(sb, service):
    return [i for i in cli(sb, "ps", "--json")["json"] if i["service"] == service]


def wait_state(sb, service, node, pred, timeout=60):
    """Wait until node's instance of service satisfies pred; return it."""
    last = []

    def probe():
        nonlocal last
        last = [i for i in instances(sb, service) if i["node"] == node]
        return last and last[0]["state"] != "pending" and pred(last[0]) and last[0]
    got = wait_for(probe, timeout, 0.5)
    assert got, f"{service} on {node}: {last}\n{sb[node].log()[-3000:]}"
    return got


def running(i):
    return i["state"] == "running" and i.get("usage")


def create(sb, name, *args):
    return cli(sb, "service", "create", name, *args)


def delete(sb, name):
    """Delete the definition and wait until the node that ran it removed it."""
    ran = [i["node"] for i in instances(sb, name) if i["state"] != "pending"]
    marks = {n: sb[n].mark() for n in ran}
    cli(sb, "service", "delete", name)
    for n in ran:
        sb[n].wait_log(rf"event=service_removed service={name}\b", since=marks[n], timeout=30)


def logs(sb, name, node):
    r = cli(sb, "logs", name, "--node", node, check=False)
    return r["out"] if r["rc"] == 0 else ""


# ------------------------------------------------------------ the controller API

def test_definitions_are_validated(sb):
    """The CLI and the cloud refuse what cannot run, with the reason."""
    bad = [
        (["Web", "--image", "web_service:latest", "--node", "fog-1"], "service name"),
        (["web", "--image", "nothere:1", "--node", "fog-1"], "not registered"),
        (["web", "--image", "web_service:latest"], "node or role"),
        (["web", "--image", "web_service:latest", "--role", "cloud"], "fog or edge"),
        (["web", "--image", "web_service:latest", "--node", "fog-1", "--cap", "CAP_SYS_ADMIN"],
         "CAP_SYS_ADMIN"),
        (["web", "--image", "web_service:latest", "--node", "fog-1", "--env", "1X=2"],
         "NAME=VALUE"),
    ]
    for args, why in bad:
        r = cli(sb, "service", "create", *args, check=False)
        assert r["rc"] != 0 and why in r["err"], (args, r)
    assert cli(sb, "service", "ls", "--json")["json"] == []


def test_only_operators_who_may_push_deploy(sb):
    """A node's credential cannot create services; the answer is DENIED."""
    node = sb["fog-1"]
    # the fog's own credential, as kept in its data directory
    cred = json.load(open(os.path.join(node.data_dir, "node", "credential.json")))
    r = requests.post(sb.cloud.url + "/api/v1/services", verify=sb.ca,
                      auth=(cred["id"], cred["secret"]),
                      json={"name": "x", "image": "web_service:latest", "node": "fog-1"})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED", r.text


def test_operators_cannot_take_over_or_read_others_services(sb):
    """mallory may push mallory/*: she cannot replace a service that runs
    another image, read its definition (env may hold secrets) or its log;
    nodes read only their own definitions."""
    create(sb, "victim", "--image", "iot_service:1.0", "--node", "fog-1",
           "--env", "API_KEY=hunter2")
    s = CaSession(sb.ca)
    s.auth = MALLORY
    api = sb.cloud.url + "/api/v1"
    r = s.post(api + "/services", json={"name": "victim", "image": "mallory/app:1",
                                         "node": "fog-1"})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED", r.text
    assert "iot_service" not in r.text, r.text  # the refusal does not name victim's image
    assert s.get(api + "/services/victim").status_code == 404
    assert "victim" not in [d["name"] for d in s.get(api + "/services").json()["services"]]
    assert s.get(api + "/logs/victim", params={"node": "fog-1"}).status_code == 403
    r = s.delete(api + "/services/victim")
    assert r.status_code == 404 and "iot_service" not in r.text, r.text  # as for GET
    cred = json.load(open(os.path.join(sb["fog-1"].data_dir, "node", "credential.json")))
    r = requests.get(api + "/services", verify=sb.ca, auth=(cred["id"], cred["secret"]))
    assert r.status_code == 403, r.text
    r = requests.get(api + "/agent/desired", verify=sb.ca, auth=(cred["id"], cred["secret"]))
    assert [d["name"] for d in r.json()["services"]] == ["victim"]
    edge = json.load(open(os.path.join(sb["edge-1"].data_dir, "node", "credential.json")))
    r = requests.get(api + "/agent/desired", verify=sb.ca, auth=(edge["id"], edge["secret"]))
    assert r.json()["services"] == []
    cli(sb, "service", "delete", "victim")


# ------------------------------------------------------------ running services

def test_web_service_runs_on_the_fog_and_answers(sb):
    """The paper's web_service from the cloud's registry, pulled through the
    fog's registry, unpacked and run by runc: curl gets its page."""
    port = free_port()
    create(sb, "web", "--image", "web_service:latest", "--node", "fog-1", "--port", port,
           "--cmd", "httpd", "--cmd", "-f", "--cmd", "-p", "--cmd", port, "--cmd", "-h",
           "--cmd", "/www", "--memory", "32M", "--pids", "32", "--cpus", "0.5")
    i = wait_state(sb, "web", "fog-1", running)
    assert i["endpoint"] == f"http://127.0.0.1:{port}/"
    assert i["digest"].startswith("sha256:")
    page = requests.get(i["endpoint"], timeout=5)
    assert page.status_code == 200 and "web_service" in page.text
    assert i["usage"]["memory_limit"] == 32 << 20
    assert i["usage"]["pids_limit"] == 32
    assert 0 < i["usage"]["memory"] <= 32 << 20
    # the image came through the fog's registry: the fog holds it now
    assert sb["fog-1"].lines(r"event=service_deployed service=web")
    out = subprocess.run(["curl", "-sf", i["endpoint"] + "health"], capture_output=True,
                         text=True, timeout=10)
    assert out.stdout.strip() == "ok"
    delete(sb, "web")
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{port}/", timeout=2)


def test_edge_runs_iot_service_from_its_fog(sb):
    """The edge pulls iot_service through its fog; its readings are in its
    log, read back with `fogport logs`."""
    create(sb, "iot", "--image", "iot_service:1.0", "--node", "edge-1", "--env", "INTERVAL=1",
           "--env", "SENSOR_ID=edge-sensor")
    wait_state(sb, "iot", "edge-1", running)
    text = wait_for(lambda: "sensor=edge-sensor seq=2" in (t := logs(sb, "iot", "edge-1")) and t,
                    20, 0.5)
    assert text and "temperature=" in text
    # only the cloud's relay token opens a node's log: not the operator's
    # own credentials at the fog, let alone at the edge
    for node in ("fog-1", "edge-1"):
        r = requests.get(f"{sb[node].url}/api/v1/logs/iot", auth=sb.admin, verify=sb.ca,
                         timeout=5)
        assert r.status_code == 401, (node, r.status_code, r.text)
    delete(sb, "iot")


def test_libarchive_is_mapped_only_while_unpacking(sb):
    """A node loads libarchive (and with it libxml2, ICU, liblzma...) to
    unpack a layer and unloads it after: an edge that is not unpacking does
    not carry it (issue 5's memory budget)."""
    import io
    import tarfile
    edge = sb["edge-1"]

    def mapped():
        with open(f"/proc/{edge.pid}/maps") as f:
            return sorted({line.split()[-1] for line in f if "libarchive" in line})
    assert mapped() == []
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = os.urandom(64).hex().encode()  # a layer no node has unpacked yet
        ti = tarfile.TarInfo("fresh")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    s = sb.session(sb.cloud, "fresh", "pull,push")
    push_image(s, sb.cloud, "fresh", "1", [buf.getvalue()], label="fresh")
    mark = edge.mark()
    create(sb, "fresh", "--image", "fresh:1", "--node", "edge-1", "--entrypoint", "/fresh",
           "--restart", "never")
    edge.wait_log(r"event=layer_unpacked ", since=mark, timeout=30)
    assert mapped() == []
    delete(sb, "fresh")


def test_confinement(sb):
    """Read-only root, no new privileges, its own PID namespace, no
    capabilities beyond the defaults, the user asked for."""
    script = ("touch /probe 2>/dev/null && echo ROOT=writable || echo ROOT=readonly; "
              "grep -E '^(NoNewPrivs|CapBnd|Uid)' /proc/self/status; "
              "echo PROCS=$(ls /proc | grep -c '^[0-9]'); echo HOST=$(hostname); sleep 600")
    create(sb, "probe", "--image", "web_service:latest", "--node", "fog-1", "--entrypoint",
           "/bin/sh", "--cmd", "-c", "--cmd", script, "--user", "65534:65534",
           "--cap", "CAP_NET_BIND_SERVICE")
    wait_state(sb, "probe", "fog-1", running)
    text = wait_for(lambda: "HOST=" in (t := logs(sb, "probe", "fog-1")) and t, 20, 0.5)
    assert "ROOT=readonly" in text, text
    assert "NoNewPrivs:\t1" in text, text
    capbnd = int(text.split("CapBnd:\t")[1].split()[0], 16)
    assert capbnd == 1 << 10, f"bounding set {capbnd:x}: only CAP_NET_BIND_SERVICE (bit 10)"
    uid = text.split("Uid:\t")[1].split()
    assert uid[0] == "65534", text
    procs = int(text.split("PROCS=")[1].split()[0])
    assert procs <= 5, f"the container sees {procs} processes"
    assert "HOST=probe" in text
    delete(sb, "probe")


def test_memory_limit_kills_and_is_reported(sb):
    """A service that allocates past its memory limit is OOM-killed; the
    kill is counted and reported to the cloud; restart=never leaves it
    exited."""
    hog = "x=a; while :; do x=$x$x$x$x; done"
    create(sb, "hog", "--image", "web_service:latest", "--node", "fog-1", "--entrypoint",
           "/bin/sh", "--cmd", "-c", "--cmd", hog, "--memory", "16M", "--restart", "never")
    i = wait_state(sb, "hog", "fog-1", lambda i: i["state"] == "exited")
    assert i["oom_kills"] >= 1, i
    assert i["exit_signal"] == 9 or i["exit_code"] == 137, i
    assert sb["fog-1"].lines(r"event=service_exited service=hog .*oom_killed=true")
    delete(sb, "hog")


def test_fork_bomb_stops_at_pids_limit(sb):
    """A fork bomb cannot go past the pids limit; the node is unharmed."""
    # the loop in a child shell (ash gives up at its first failed fork);
    # the service's own process then execs, needing no new process
    bomb = "sh -c 'for i in $(seq 1 200); do sleep 600 & done'; echo SPAWNED; exec sleep 600"
    create(sb, "bomb", "--image", "web_service:latest", "--node", "fog-1", "--entrypoint",
           "/bin/sh", "--cmd", "-c", "--cmd", bomb, "--pids", "20")
    i = wait_state(sb, "bomb", "fog-1", lambda i: running(i) and i["usage"]["pids"] >= 15)
    time.sleep(2)
    i = wait_state(sb, "bomb", "fog-1", running)
    assert i["usage"]["pids"] <= 20, i
    text = logs(sb, "bomb", "fog-1")
    assert "SPAWNED" in text and "can't fork" in text, text[-2000:]
    delete(sb, "bomb")


def test_restart_policy_always_restarts_with_backoff(sb):
    """A service that keeps exiting is started again, with growing pauses."""
    create(sb, "flappy", "--image", "web_service:latest", "--node", "fog-1", "--entrypoint",
           "/bin/sh", "--cmd", "-c", "--cmd", "echo started; exit 3")
    i = wait_state(sb, "flappy", "fog-1", lambda i: i.get("restarts", 0) >= 3, timeout=40)
    assert i["exit_code"] == 3
    starts = sb["fog-1"].lines(r"event=service_started service=flappy")
    assert len(starts) >= 4
    delete(sb, "flappy")


# ------------------------------------------------------------ agent restarts

def test_agent_kill9_adopts_running_services(sb):
    """kill -9 of the fog's fogport: the service keeps answering; the
    restarted agent adopts the same container (same pid), not a second one."""
    port = free_port()
    create(sb, "steady", "--image", "web_service:latest", "--node", "fog-1", "--port", port,
           "--cmd", "httpd", "--cmd", "-f", "--cmd", "-p", "--cmd", port, "--cmd", "-h",
           "--cmd", "/www")
    before = wait_state(sb, "steady", "fog-1", running)
    create(sb, "once", "--image", "iot_service:1.0", "--node", "fog-1", "--env", "COUNT=1",
           "--restart", "never")
    wait_state(sb, "once", "fog-1", lambda i: i["state"] == "exited")
    fog = sb["fog-1"]
    fog.kill9()
    assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    mark = fog.mark()
    fog.start()
    fog.wait_log(r"event=service_adopted service=steady", since=mark, timeout=20)
    after = wait_state(sb, "steady", "fog-1", lambda i: running(i) and i["reported"] >= 0)
    assert after["pid"] == before["pid"] and pid_alive(before["pid"])
    assert not fog.lines(r"event=service_started service=steady", since=mark)
    # a service that ended for good is not run again by the new agent
    assert wait_state(sb, "once", "fog-1", lambda i: i["state"] == "exited")
    assert not fog.lines(r"event=service_started service=once", since=mark)
    # the adopted service's layers survive a prune (removing another one)
    delete(sb, "once")
    root = os.path.join(fog.data_dir, "agent", "services", "steady", "rootfs")
    assert os.path.exists(os.path.join(root, "bin", "busybox"))
    assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    delete(sb, "steady")


def test_desired_state_survives_a_cloud_outage(sb):
    """With the cloud stopped, a restarted fog runs its services from the
    desired state it kept on disk."""
    port = free_port()
    create(sb, "durable", "--image", "web_service:latest", "--node", "fog-1", "--port", port,
           "--cmd", "httpd", "--cmd", "-f", "--cmd", "-p", "--cmd", port, "--cmd", "-h",
           "--cmd", "/www", "--restart", "always")
    wait_state(sb, "durable", "fog-1", running)
    fog = sb["fog-1"]
    os.kill(sb.cloud.pid, signal.SIGSTOP)
    try:
        fog.stop()
        # its container was adopted-or-kept; make the agent start it afresh
        subprocess.run(["runc", "--root", os.path.join(fog.data_dir, "agent", "runtime"),
                        "kill", "durable", "KILL"], capture_output=True)
        mark = fog.mark()
        fog.start()
        fog.wait_log(r"event=service_started service=durable", since=mark, timeout=30)
        assert wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=2)
                        .status_code == 200, 15, 0.5)
    finally:
        os.kill(sb.cloud.pid, signal.SIGCONT)
    delete(sb, "durable")


def test_deleted_service_leaves_nothing(sb):
    """Delete: container gone from runc, bundle and mount gone."""
    create(sb, "brief", "--image", "iot_service:1.0", "--node", "fog-1")
    wait_state(sb, "brief", "fog-1", running)
    fog = sb["fog-1"]
    d = os.path.join(fog.data_dir, "agent", "services", "brief")
    assert os.path.isdir(d)
    delete(sb, "brief")
    assert wait_for(lambda: not os.path.exists(d), 15, 0.3)
    r = subprocess.run(["runc", "--root", os.path.join(fog.data_dir, "agent", "runtime"),
                        "list", "-q"], capture_output=True, text=True)
    assert "brief" not in r.stdout.split()
    assert d not in open("/proc/self/mountinfo").read()


def test_layers_are_shared_then_pruned(sb):
    """Two services on the same base share its unpacked layers (unpacked
    once); when both are gone, the cache is emptied."""
    fog = sb["fog-1"]
    mark = fog.mark()
    create(sb, "one", "--image", "iot_service:1.0", "--node", "fog-1")
    create(sb, "two", "--image", "monitoring_service:1.0", "--node", "fog-1", "--cmd",
           "/srv/monitor.sh", "--cmd", "http://127.0.0.1:9/", "--env", "INTERVAL=60")
    wait_state(sb, "one", "fog-1", running)
    wait_state(sb, "two", "fog-1", running)
    unpacked = [l.split("digest=")[1].split()[0]
                for l in fog.lines(r"event=layer_unpacked", since=mark)]
    assert len(unpacked) == len(set(unpacked)), f"a layer was unpacked twice: {unpacked}"
    cache = os.path.join(fog.data_dir, "agent", "layers", "sha256")
    assert len(os.listdir(cache)) >= 3  # the shared base and one layer per service
    delete(sb, "one")
    delete(sb, "two")
    assert wait_for(lambda: os.listdir(cache) == [], 10, 0.3), os.listdir(cache)


def test_malicious_layer_is_refused(sb):
    """An image whose layer writes through ../ is refused when unpacked:
    the instance reports the error and nothing lands outside the root."""
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"pwned\n"
        ti = tarfile.TarInfo("../../../../../../tmp/fogport-escape")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    s = sb.session(sb.cloud, "evil", "pull,push")
    push_image(s, sb.cloud, "evil", "1", [buf.getvalue()], label="evil")
    if os.path.exists("/tmp/fogport-escape"):
        os.unlink("/tmp/fogport-escape")
    create(sb, "evil", "--image", "evil:1", "--node", "fog-1", "--entrypoint", "/x")
    i = wait_state(sb, "evil", "fog-1", lambda i: i["error"])
    assert ".." in i["error"], i
    assert not os.path.exists("/tmp/fogport-escape")
    delete(sb, "evil")
