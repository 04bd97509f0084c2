"""Always-on hand-over among the fogs while the cloud is away (issue 6,
item 5; docs/control.md "Hand-over without the cloud"): `sandbox up --netns
--etcd` runs an etcd member in each fog's namespace; each fog keeps a lease
and /fogport/fogs/ID under it. With the cloud gone (kill -9) and then the
fog that runs an always-on service gone too, another fog claims
/fogport/always-on/NAME in a compare-and-swap transaction and starts the
service; the failed fog, restarted, runs no second copy; the cloud, back,
adopts the fogs' placement. A fog cut off from the etcd quorum stops the
copy it holds before its lease can expire, and another fog takes over.

Needs root, runc, `ip netns` and etcd (etcd-server, etcd-client)."""
import base64
import json
import os
import re
import shutil
import subprocess
import time

import pytest
import requests

from conftest import FOGPORT
from fedhelp import ENV, Sandbox, check_log_clean, cli, cli_json, running_on, wait_for
from helpers import images  # noqa: F401 (fixture)
from test_handover import PORT, answers, crash, endpoint, resolved
from test_netns import netns_works

pytestmark = pytest.mark.skipif(
    not shutil.which("runc") or not netns_works() or not shutil.which("etcd") or
    not shutil.which("etcdctl"), reason="needs root, runc, `ip netns` and etcd")

DEAD_AFTER = 6  # the fogs' [control] dead_after (default)
LEASE = 5  # their [control] lease (default)


@pytest.fixture(scope="module")
def sb(tmp_path_factory, images):  # noqa: F811
    d = tmp_path_factory.mktemp("handover_etcd")
    # the sandbox's replication rules: every image pushed to the cloud goes
    # to every fog, so the fogs hold it when the cloud is gone
    s = Sandbox(d, fogs=3, edges=1, replication=None, args=["--netns", "--etcd"]).up()
    s.etcd = ",".join(m["client"] for m in s.topo["etcd"])
    try:
        s.push(images, "web_service:latest", s.cloud)
        for f in s.fogs_list():
            f.wait_log(r"event=replicated repo=web_service ", timeout=60)
        yield s
        check_log_clean(s)
    finally:
        s.down()


def etcd_get(sb, prefix):
    """{key: value} under prefix, as etcdctl reads it."""
    r = subprocess.run(["etcdctl", "--endpoints", sb.etcd, "get", "--prefix", prefix,
                        "-w", "json"], capture_output=True, text=True, timeout=10,
                       env=dict(ENV, ETCDCTL_API="3"))
    assert r.returncode == 0, r.stderr
    kvs = json.loads(r.stdout).get("kvs", [])
    return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode()
            for kv in kvs}


def holder(sb, service):
    v = etcd_get(sb, f"/fogport/always-on/{service}").get(f"/fogport/always-on/{service}")
    return json.loads(v)["fog"] if v else None


def desired_of(sb, node):
    """/api/v1/agent/desired as the node's agent gets it."""
    cred = json.load(open(os.path.join(node.data_dir, "node", "credential.json")))
    r = requests.get(sb.cloud.url + "/api/v1/agent/desired", verify=sb.ca,
                     auth=(cred["id"], cred["secret"]), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def serving(sb):
    """The fogs whose address answers the web service."""
    return sorted(f.id for f in sb.fogs_list() if answers(endpoint(f)))


def log_time(line):
    m = re.search(r"time=(\S+)", line)
    return m.group(1) if m else ""


def test_fogs_hand_over_while_the_cloud_is_away(sb):
    fog1, fog2, fog3 = sb["fog-1"], sb["fog-2"], sb["fog-3"]
    assert set(etcd_get(sb, "/fogport/fogs/")) == {
        "/fogport/fogs/fog-1", "/fogport/fogs/fog-2", "/fogport/fogs/fog-3"}
    cli(sb, "service", "create", "web", "--image", "web_service:latest", "--node", "fog-1",
        "--port", PORT, "--always-on", "--cmd", "httpd", "--cmd", "-f", "--cmd", "-p", "--cmd",
        PORT, "--cmd", "-h", "--cmd", "/www")
    assert wait_for(lambda: running_on(sb, "web") == ["fog-1"], 60, 0.5), cli_json(sb, "ps")
    assert wait_for(lambda: answers(endpoint(fog1)), 10)
    # the other fogs learn web and where it runs; fog-1 has it as its own;
    # an edge, which takes no fog's service over, learns nothing
    d2 = desired_of(sb, fog2)
    assert [(a["definition"]["name"], a["node"]) for a in d2["always_on"]] == [("web", "fog-1")]
    assert d2["services"] == []
    d1 = desired_of(sb, fog1)
    assert [d["name"] for d in d1["services"]] == ["web"] and d1["always_on"] == []
    assert desired_of(sb, sb["edge-1"])["always_on"] == []
    # the fogs know web from their desired state: give them a sync
    time.sleep(3)
    assert holder(sb, "web") is None  # the cloud is there: it places, nobody claims

    # the cloud goes, then fog-1 (its fogport, its container)
    sb.cloud.kill9()
    t0 = time.time()
    crash(fog1)
    assert wait_for(lambda: serving(sb) == ["fog-2"], 40, 0.2), \
        (serving(sb), fog2.log()[-3000:])
    t_serving = time.time() - t0
    assert holder(sb, "web") == "fog-2"
    fog2.wait_log(r"event=handover_claimed service=web from=fog-1", timeout=1)
    print(f"\ncloud and fog-1 down: web answers on fog-2 after {t_serving:.1f}s "
          f"(cloud silence {DEAD_AFTER}s, lease {LEASE}s)")
    assert t_serving < DEAD_AFTER + LEASE + 15
    # exactly one copy, and it stays one
    time.sleep(3)
    assert serving(sb) == ["fog-2"]
    assert not fog3.lines(r"event=service_started service=web")

    # fog-1 comes back while the cloud is still away: fog-2 holds web, so
    # fog-1 does not start its own (saved) copy
    mark1 = fog1.mark()
    fog1.start()
    fog1.wait_log(r"event=handover_fog_mode", since=mark1, timeout=DEAD_AFTER + 5)
    time.sleep(3)
    assert not fog1.lines(r"event=service_started service=web", since=mark1)
    assert serving(sb) == ["fog-2"] and holder(sb, "web") == "fog-2"

    # the cloud comes back: it adopts fog-2's placement, one copy runs, and
    # the claim is released once the cloud has answered for dead_after
    markc = sb.cloud.mark()
    sb.cloud.start()
    sb.cloud.wait_log(r"event=claim_adopted service=web node=fog-2", since=markc, timeout=20)
    sb.cloud.wait_log(r"event=handover service=web from=fog-1 to=fog-2", since=markc, timeout=5)
    assert wait_for(lambda: running_on(sb, "web") == ["fog-2"], 20, 0.5), cli_json(sb, "ps")
    assert wait_for(lambda: resolved(sb) == endpoint(fog2), 20, 0.5), resolved(sb)
    assert wait_for(lambda: holder(sb, "web") is None, DEAD_AFTER + 10, 0.5)
    fog2.wait_log(r"event=handover_released service=web", timeout=1)
    time.sleep(3)
    assert serving(sb) == ["fog-2"]
    assert [i["node"] for i in cli_json(sb, "ps") if i["service"] == "web"] == ["fog-2"]
    assert not fog1.lines(r"event=service_started service=web", since=mark1)


def test_fog_cut_off_from_the_quorum_stops_its_copy(sb):
    """fog-2 runs web and holds its claim (the cloud is away); its link is
    cut (its etcd member with it): it stops web before its lease can expire
    in etcd, and then fog-1 claims web and starts it."""
    fog1, fog2 = sb["fog-1"], sb["fog-2"]
    assert wait_for(lambda: running_on(sb, "web") == ["fog-2"], 20, 0.5)
    sb.cloud.kill9()
    # the cloud silent for dead_after: fog-2 claims its own always-on service
    assert wait_for(lambda: holder(sb, "web") == "fog-2", DEAD_AFTER + 10, 0.3)
    assert serving(sb) == ["fog-2"]
    mark1, mark2 = fog1.mark(), fog2.mark()
    cut = ["ip", "-n", fog2.netns, "link", "set", "eth0"]
    subprocess.run(cut + ["down"], check=True, timeout=10)
    t0 = time.time()
    try:
        stopped = fog2.wait_log(r"event=service_removed service=web", since=mark2,
                                timeout=LEASE + 5)
        t_stopped = time.time() - t0
        assert wait_for(lambda: answers(endpoint(fog1)), LEASE + 25, 0.2), fog1.log()[-3000:]
        t_moved = time.time() - t0
        claimed = fog1.wait_log(r"event=handover_claimed service=web", since=mark1, timeout=1)
        # fenced: fog-2's copy stopped before fog-1 could claim
        assert log_time(stopped[0]) < log_time(claimed[0]), (stopped, claimed)
        assert holder(sb, "web") == "fog-1"
        print(f"\nfog-2 cut off: its copy stopped after {t_stopped:.1f}s, "
              f"web answers on fog-1 after {t_moved:.1f}s")
        # no copy left in fog-2's runtime
        root = os.path.join(fog2.data_dir, "agent", "runtime")
        st = subprocess.run(["runc", "--root", root, "state", "web"], capture_output=True,
                            text=True)
        assert st.returncode != 0 or '"running"' not in st.stdout, st.stdout
    finally:
        subprocess.run(cut + ["up"], timeout=10)
    # fog-2 back on the network: it renews with a new lease, fog-1 keeps web
    fog2.wait_log(r"event=etcd_lease ", since=mark2, timeout=20)
    time.sleep(3)
    assert serving(sb) == ["fog-1"] and holder(sb, "web") == "fog-1"
    # the cloud back: one copy, on fog-1
    sb.cloud.start()
    assert wait_for(lambda: running_on(sb, "web") == ["fog-1"], 30, 0.5), cli_json(sb, "ps")
    assert wait_for(lambda: holder(sb, "web") is None, DEAD_AFTER + 10, 0.5)
    assert serving(sb) == ["fog-1"]
    cli(sb, "service", "delete", "web")


@pytest.mark.parametrize("conf,message", [
    # a registry without an agent has nothing to hand over
    ("[control]\netcd = http://127.0.0.1:2379\n",
     "[control] etcd: for fogs that run services ([agent] enabled)"),
    ("[node]\nid = fog-9\nrole = fog\ncloud = https://127.0.0.1:1\n[agent]\nenabled = true\n"
     "[control]\netcd = 127.0.0.1:2379\n",
     "[control] etcd: \"127.0.0.1:2379\" is not an http(s):// URL"),
])
def test_bad_etcd_configuration_is_refused(tmp_path, conf, message):
    path = tmp_path / "fogport.conf"
    path.write_text(f"[storage]\ndata = {tmp_path}/data\n[server]\nlisten = 127.0.0.1:0\n" + conf)
    r = subprocess.run([FOGPORT, "serve", "--config", str(path)], capture_output=True,
                       text=True, timeout=30, env=ENV)
    assert r.returncode != 0 and message in r.stderr, r.stderr
