"""Policy enforcement (issue 6, item 3): a service above its --max-cpu for
the whole --window is stopped by its node's agent for good (state
violated, not restarted), and the violation with its evidence (the
window's usage samples) reaches the cloud (`fogport violations`, the audit
trail); a well-behaved service under the same policy runs on; a definition
asking for a capability the node policy forbids is refused by the cloud and,
when stale, by the agent; enforcement works with the cloud stopped.

One module-wide sandbox: a cloud and one fog with its agent. Needs root
and runc (skipped otherwise)."""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest
import requests

from fedhelp import Sandbox, wait_for
from helpers import images  # noqa: F401 (fixture)
from test_agent import cli, create, delete, instances, running, wait_state

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"),
                                reason="the agent needs root and runc")

BURN = ["--image", "web_service:latest", "--node", "fog-1", "--entrypoint", "/bin/sh",
        "--cmd", "-c", "--cmd", "while :; do :; done"]
POLICY = ["--max-cpu", "0.2", "--window", "3", "--stop-grace", "2"]


@pytest.fixture(scope="module")
def sb(tmp_path_factory, images):
    d = tmp_path_factory.mktemp("enforce")
    s = Sandbox(d, fogs=1, edges=0).up()
    s.env = dict(os.environ, FOGPORT_CONFIG=s.client_json)
    s.push(images, "web_service:latest", s.cloud)
    yield s
    for sv in cli(s, "service", "ls", "--json", check=False).get("json") or []:
        cli(s, "service", "delete", sv["name"], check=False)
    s.down()


def violations(sb, service):
    return cli(sb, "violations", "--service", service, "--json")["json"]


def audit_violations(sb, service):
    entries = json.loads(cli(sb, "audit", "--json")["out"])
    return [e for e in entries if e["kind"] == "violation" and e["subject"] == service]


def container_running(sb, name):
    root = os.path.join(sb["fog-1"].data_dir, "agent", "runtime")
    r = subprocess.run(["runc", "--root", root, "state", name], capture_output=True, text=True)
    return r.returncode == 0 and json.loads(r.stdout)["status"] == "running"


def check_cpu_evidence(v):
    assert v["kind"] == "cpu" and v["limit"] == pytest.approx(0.2), v
    assert v["window_s"] == 3 and v["action"] in ("terminated", "killed"), v
    assert len(v["samples"]) >= 3, v
    assert all(s["cpu"] is not None and s["cpu"] > 0.2 for s in v["samples"]), v


def test_cpu_burner_is_stopped_and_recorded(sb):
    create(sb, "burner", *BURN, *POLICY, "--restart", "always")
    wait_state(sb, "burner", "fog-1", running)
    started = time.monotonic()
    # within the window plus sampling, the grace and a heartbeat or two
    i = wait_state(sb, "burner", "fog-1", lambda i: i["state"] == "violated", timeout=20)
    assert time.monotonic() - started < 15
    check_cpu_evidence(i["violation"])
    assert not container_running(sb, "burner")
    assert sb["fog-1"].lines(r"event=service_violated service=burner kind=cpu")

    # at the cloud: the violation table and the audit trail, with evidence
    got = wait_for(lambda: violations(sb, "burner"), 15, 0.5)
    assert got and len(got) == 1, got
    assert got[0]["node"] == "fog-1" and got[0]["image"] == "web_service:latest"
    check_cpu_evidence(got[0])
    trail = audit_violations(sb, "burner")
    assert len(trail) == 1 and "fog-1" in trail[0]["actor"], trail
    check_cpu_evidence(trail[0]["details"])
    human = cli(sb, "violations")["out"]
    assert "burner" in human and "cpu above 0.2" in human, human
    assert "violated" in cli(sb, "ps")["out"]

    # not restarted, whatever its restart policy; reported once
    time.sleep(5)
    i = [x for x in instances(sb, "burner") if x["node"] == "fog-1"][0]
    assert i["state"] == "violated" and i["restarts"] == 0, i
    assert not container_running(sb, "burner")
    assert len(violations(sb, "burner")) == 1
    assert len(audit_violations(sb, "burner")) == 1

    # creating it again (unchanged) clears it: it runs again
    mark = sb["fog-1"].mark()
    create(sb, "burner", *BURN, *POLICY, "--restart", "always")
    sb["fog-1"].wait_log(r"event=service_started service=burner\b", since=mark, timeout=30)
    delete(sb, "burner")


def test_well_behaved_service_keeps_running(sb):
    create(sb, "calm", "--image", "web_service:latest", "--node", "fog-1", "--entrypoint",
           "/bin/sh", "--cmd", "-c", "--cmd", "exec sleep 600", *POLICY)
    wait_state(sb, "calm", "fog-1", running)
    time.sleep(3 + 4)
    i = wait_state(sb, "calm", "fog-1", running)
    assert i["restarts"] == 0 and "violation" not in i, i
    assert violations(sb, "calm") == []
    delete(sb, "calm")


def test_enforced_while_the_cloud_is_stopped(sb):
    create(sb, "burner2", *BURN, *POLICY, "--restart", "always")
    wait_state(sb, "burner2", "fog-1", running)
    fog = sb["fog-1"]
    mark = fog.mark()
    os.kill(sb.cloud.pid, signal.SIGSTOP)
    try:
        fog.wait_log(r"event=service_violated service=burner2 kind=cpu", since=mark, timeout=20)
        assert not container_running(sb, "burner2")
    finally:
        os.kill(sb.cloud.pid, signal.SIGCONT)
    got = wait_for(lambda: violations(sb, "burner2"), 20, 0.5)
    assert got and got[0]["node"] == "fog-1", got
    check_cpu_evidence(got[0])
    assert audit_violations(sb, "burner2")
    delete(sb, "burner2")


def test_privileges_beyond_the_node_policy(sb):
    # at the cloud: even a raw definition asking for CAP_SYS_ADMIN is refused
    # and recorded (the CLI would refuse it before sending)
    r = requests.post(sb.cloud.url + "/api/v1/services", verify=sb.ca, auth=sb.admin,
                      json={"name": "root-ish", "image": "web_service:latest", "node": "fog-1",
                            "capabilities": ["CAP_SYS_ADMIN"]}, timeout=10)
    assert r.status_code == 403 and "CAP_SYS_ADMIN" in r.text, r.text
    got = violations(sb, "root-ish")
    assert got and got[0]["node"] == "cloud" and got[0]["kind"] == "privilege", got
    assert got[0]["action"] == "refused" and got[0]["capabilities"] == ["CAP_SYS_ADMIN"]
    assert audit_violations(sb, "root-ish")

    # a service allowed by the policy when it was defined...
    create(sb, "pinger", "--image", "web_service:latest", "--node", "fog-1", "--entrypoint",
           "/bin/sh", "--cmd", "-c", "--cmd", "exec sleep 600", "--cap", "CAP_NET_RAW")
    wait_state(sb, "pinger", "fog-1", running)
    # ...then the node policy narrows: the agent refuses the stale definition
    narrowed = "CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_SETUID, CAP_SETGID, CAP_NET_BIND_SERVICE"
    cloud = sb.cloud
    cloud.stop()
    cloud.set_config("control", allowed_capabilities=narrowed, allowed_ports="1024-65535")
    try:
        cloud.start()
        i = wait_state(sb, "pinger", "fog-1", lambda i: i["state"] == "violated", timeout=30)
        v = i["violation"]
        assert v["kind"] == "privilege" and "CAP_NET_RAW" in v["message"], v
        assert not container_running(sb, "pinger")
        got = wait_for(lambda: [x for x in violations(sb, "pinger") if x["node"] == "fog-1"],
                       15, 0.5)
        assert got and got[0]["capabilities"] == ["CAP_NET_RAW"], got

        # the cloud refuses it at create time now, with the reason
        r = cli(sb, "service", "create", "pinger2", "--image", "web_service:latest", "--node",
                "fog-1", "--cap", "CAP_NET_RAW", check=False)
        assert r["rc"] != 0 and "privilege violation" in r["err"] and "CAP_NET_RAW" in r["err"]
        r = cli(sb, "service", "create", "lowport", "--image", "web_service:latest", "--node",
                "fog-1", "--port", "80", check=False)
        assert r["rc"] != 0 and "port 80" in r["err"], r
        assert violations(sb, "pinger2") and violations(sb, "lowport")

        # without --cap a service gets the policy's narrowed set
        create(sb, "narrow", "--image", "web_service:latest", "--node", "fog-1",
               "--entrypoint", "/bin/sh", "--cmd", "-c", "--cmd",
               "grep CapBnd /proc/self/status; exec sleep 600")
        wait_state(sb, "narrow", "fog-1", running)
        text = wait_for(lambda: "CapBnd" in (r := cli(sb, "logs", "narrow", "--node", "fog-1",
                                                      check=False))["out"] and r["out"], 15, 0.5)
        bnd = int(text.split("CapBnd:")[1].split()[0], 16)
        assert bnd & (1 << 13) == 0, text  # CAP_NET_RAW is 13
        assert bnd & (1 << 0), text  # CAP_CHOWN is 0
        delete(sb, "narrow")
        delete(sb, "pinger")
    finally:
        cloud.stop()
        cloud.set_config("control", allowed_capabilities="", allowed_ports="")
        cloud.start()
