"""Recall (issue 6, item 4): `fogport recall IMAGE` revokes an image
everywhere. The cloud keeps the recall in control.db and serves the list;
every registry refuses the recalled manifest (403 DENIED, even to a client
holding a valid token) and the blobs only it needed; fogs and edges delete
it; agents stop what runs from it; a node that was down during the recall
applies it on start, before it serves. `fogport unrecall` ends it: the cloud
kept the content, so the image pulls again without a new push.

One module-wide sandbox: a cloud, two fogs (every image registered at the
cloud is replicated to them), an edge under fog-1, agents on the fogs and
the edge. Needs root and runc (the agent) and skopeo."""
import json
import os
import shutil
import subprocess
import time

import pytest
import requests

from fedhelp import Sandbox, cli, cli_json, instances, wait_for
from helpers import images  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runc") or not shutil.which("skopeo"),
    reason="recall stops services: needs root, runc and skopeo")

PAPER = ["iot_service:1.0", "monitoring_service:1.0", "web_service:latest"]
ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json"])


@pytest.fixture(scope="module")
def sb(tmp_path_factory, images):
    d = tmp_path_factory.mktemp("recall")
    s = Sandbox(d, fogs=2, edges=1, replication=None).up()
    s.env = dict(os.environ, FOGPORT_CONFIG=s.client_json)
    for ref in PAPER:
        s.push(images, ref, s.cloud)
    # another image in the same repository, sharing iot_service's base layer
    s.push(images, "monitoring_service:1.0", s.cloud, dest="iot_service:mon")
    yield s
    for sv in cli_list(s, "service", "ls"):
        cli(s, "service", "delete", sv["name"], check=False)
    for r in cli_list(s, "recall", "ls"):
        cli(s, "unrecall", r["digest"], check=False)
    s.down()


def cli_list(sb, *args):
    """`fogport *args --json` parsed; [] when it fails (teardown)."""
    r = cli(sb, *args, "--json", check=False)
    return json.loads(r.stdout) if r.returncode == 0 else []


def get_manifest(sb, node, repo, ref):
    """A raw GET with a valid admin token for repo: (status, body)."""
    s = sb.session(node, repo)
    s.headers["Accept"] = ACCEPT
    r = s.get(f"{node.url}/v2/{repo}/manifests/{ref}", timeout=30)
    return r.status_code, r.text


def denied(status_body):
    status, body = status_body
    return status == 403 and "DENIED" in body and "recalled" in body


def inspect_fails(sb, node, ref):
    r = subprocess.run(["skopeo", "--insecure-policy", "inspect", "--raw", "--cert-dir", sb.certs,
                        "--creds", sb.creds(), f"docker://{node.host}/{ref}"],
                       capture_output=True, text=True, timeout=60)
    return r.returncode != 0


def tags(sb, node, repo):
    s = sb.session(node, repo)
    r = s.get(f"{node.url}/v2/{repo}/tags/list", timeout=30)
    return r.json().get("tags") or [] if r.status_code == 200 else []


def held(sb, node, repo, ref):
    return wait_for(lambda: get_manifest(sb, node, repo, ref)[0] == 200, 60, 0.5)


def test_recall_stops_denies_and_deletes(sb, tmp_path):
    """A running service's image is recalled: the instance goes within
    seconds, every node answers DENIED for it (tag and digest, skopeo and a
    raw request with a token), the fogs delete it, and the image sharing its
    base layer in the same repository still pulls."""
    cli(sb, "service", "create", "sensor", "--image", "iot_service:1.0", "--node", "fog-1",
        "--env", "INTERVAL=1")
    assert wait_for(lambda: any(i["node"] == "fog-1" and i["state"] == "running"
                                for i in instances(sb, "sensor")), 90, 0.5), \
        f"{instances(sb, 'sensor')}\n{sb['fog-1'].log()[-3000:]}"
    for fog in ("fog-1", "fog-2"):  # replicated before the recall
        assert held(sb, sb[fog], "iot_service", "1.0"), sb[fog].log()[-3000:]
    marks = {n: sb[n].mark() for n in ("fog-1", "fog-2", "edge-1")}

    out = cli(sb, "recall", "iot_service:1.0", "--reason", "test: leaks secrets").stdout
    digest = out.split(": ", 1)[1].split()[0]
    assert digest.startswith("sha256:"), out
    listed = cli_json(sb, "recall", "ls")
    assert [r["digest"] for r in listed] == [digest]
    assert listed[0]["reason"] == "test: leaks secrets" and listed[0]["user"] == "admin"
    assert listed[0]["ref"] == "iot_service:1.0" and listed[0]["blobs"]

    # the agent stops and removes it; the definition stays, shown recalled
    assert wait_for(lambda: [i["state"] for i in instances(sb, "sensor")] == ["recalled"], 30,
                    0.5), instances(sb, "sensor")
    sb["fog-1"].wait_log(r"event=service_removed service=sensor\b", since=marks["fog-1"],
                         timeout=30)
    assert cli(sb, "service", "show", "sensor", check=False).returncode == 0

    # every registry refuses it, the cloud at once, the others within a tick
    for n in ("cloud", "fog-1", "fog-2", "edge-1"):
        node = sb[n]
        assert wait_for(lambda: denied(get_manifest(sb, node, "iot_service", "1.0")), 20, 0.3), \
            (n, get_manifest(sb, node, "iot_service", "1.0"), node.log()[-2000:])
        assert denied(get_manifest(sb, node, "iot_service", digest)), n
        assert inspect_fails(sb, node, "iot_service:1.0"), n
    # the fogs deleted it (manifest and tag)
    for fog in ("fog-1", "fog-2"):
        sb[fog].wait_log(rf"event=recall_applied repo=iot_service digest={digest}",
                         since=marks[fog])
        assert "1.0" not in tags(sb, sb[fog], "iot_service"), fog
    # a new service of the recalled image is refused at the cloud
    r = cli(sb, "service", "create", "again", "--image", "iot_service:1.0", "--node", "fog-2",
            check=False)
    assert r.returncode != 0 and "recalled" in r.stderr, r

    # the shared base layer serves the image that is not recalled
    for n in ("cloud", "fog-1", "edge-1"):
        got = sb.pull(sb[n], "iot_service:mon", str(tmp_path / f"mon-{n}"))
        assert got and got != digest, n
    assert sb.pull(sb["fog-2"], "monitoring_service:1.0", str(tmp_path / "monitoring"))


def test_recall_is_for_deleters_only(sb):
    """Recalling needs delete permission on the repository: a node cannot."""
    node = sb["fog-1"]
    cred = json.load(open(os.path.join(node.data_dir, "node", "credential.json")))
    r = requests.post(sb.cloud.url + "/api/v1/recalls", verify=sb.ca,
                      auth=(cred["id"], cred["secret"]), json={"image": "web_service:latest"},
                      timeout=10)
    assert r.status_code == 403 and "DENIED" in r.text, r.text
    # but the node reads the list
    r = requests.get(sb.cloud.url + "/api/v1/recalls", verify=sb.ca,
                     auth=(cred["id"], cred["secret"]), timeout=10)
    assert r.status_code == 200 and "recalls" in r.json()


def test_node_down_during_recall_applies_it_before_serving(sb):
    """fog-2 is stopped while web_service is recalled: when it starts again
    its very first answer for the image is DENIED, and it deleted its copy
    before it served anything."""
    fog = sb["fog-2"]
    assert held(sb, fog, "web_service", "latest"), fog.log()[-3000:]
    fog.stop()
    out = cli(sb, "recall", "web_service:latest").stdout
    digest = out.split(": ", 1)[1].split()[0]
    mark = fog.mark()
    fog.start()
    assert denied(get_manifest(sb, fog, "web_service", "latest"))
    assert denied(get_manifest(sb, fog, "web_service", digest))
    log = fog.log(mark)
    applied = log.find(f"event=recall_applied repo=web_service digest={digest}")
    serving = log.find("event=serving")
    assert 0 <= applied < serving, log[-3000:]
    cli(sb, "unrecall", digest)


def test_saved_list_applies_without_the_cloud(sb):
    """A node that kept the recall list refuses the image after a restart
    even while the cloud is away."""
    fog = sb["fog-2"]
    with open(os.path.join(fog.data_dir, "node", "recalls.json")) as f:
        saved = json.load(f)
    assert any(r["repo"] == "iot_service" for r in saved)
    sb.cloud.send(__import__("signal").SIGSTOP)
    try:
        fog.stop()
        fog.start(timeout=40)
        assert denied(get_manifest_cloudless(sb, fog))
    finally:
        sb.cloud.send(__import__("signal").SIGCONT)


def get_manifest_cloudless(sb, fog):
    """A token the fog issues itself (the cloud is stopped): fogs sign
    tokens with their signer certificate."""
    r = requests.get(fog.url + "/auth/token", params={
        "service": fog.id, "scope": "repository:iot_service:pull"}, auth=sb.admin, verify=sb.ca,
        timeout=10)
    if r.status_code != 200:  # no token service at the fog: basic auth
        r2 = requests.get(f"{fog.url}/v2/iot_service/manifests/1.0", auth=sb.admin,
                          verify=sb.ca, headers={"Accept": ACCEPT}, timeout=10)
        return r2.status_code, r2.text
    r2 = requests.get(f"{fog.url}/v2/iot_service/manifests/1.0", verify=sb.ca, timeout=10,
                      headers={"Accept": ACCEPT, "Authorization": "Bearer " + r.json()["token"]})
    return r2.status_code, r2.text


def test_unrecall_makes_it_pullable_again(sb, tmp_path):
    """Un-recall is explicit; the cloud kept the content, the fogs fetch it
    again on demand, and the agent runs the service again."""
    digest = [r["digest"] for r in cli_json(sb, "recall", "ls")
              if r["repo"] == "iot_service"][0]
    cli(sb, "unrecall", digest)
    assert cli_json(sb, "recall", "ls") == []
    assert sb.pull(sb.cloud, "iot_service:1.0", str(tmp_path / "cloud")) == digest
    fog = sb["fog-1"]
    assert wait_for(lambda: get_manifest(sb, fog, "iot_service", "1.0")[0] == 200, 20, 0.3), \
        get_manifest(sb, fog, "iot_service", "1.0")
    assert sb.pull(fog, "iot_service:1.0", str(tmp_path / "fog")) == digest
    assert wait_for(lambda: any(i["node"] == "fog-1" and i["state"] == "running"
                                for i in instances(sb, "sensor")), 90, 0.5), \
        instances(sb, "sensor")
    # a second un-recall has nothing to end
    r = cli(sb, "unrecall", digest, check=False)
    assert r.returncode != 0 and "not recalled" in r.stderr, r


def test_recall_reaches_a_node_within_heartbeats(sb, tmp_path):
    """The cloud answers every heartbeat with the version of its recall
    list; a node that is behind fetches the list at once. fog-2 fetches the
    list on its own only every 5 minutes here, yet refuses a newly recalled
    image within seconds."""
    from fedhelp import gz_layer, push_image
    fog = sb["fog-2"]
    fog.stop()
    fog.set_config("node", revocation_interval="300s")
    fog.start()
    s = sb.session(sb.cloud, "quick/app", "pull,push")
    push_image(s, sb.cloud, "quick/app", "1.0", [gz_layer(3000)])
    assert held(sb, fog, "quick/app", "1.0"), fog.log()[-3000:]
    # past the fetch one second after start: from here on only heartbeats tell
    time.sleep(3)
    mark = fog.mark()
    cli(sb, "recall", "quick/app:1.0")
    try:
        assert wait_for(lambda: denied(get_manifest(sb, fog, "quick/app", "1.0")), 10, 0.3), \
            fog.log(mark)[-3000:]
        assert "event=recalls_updated" in fog.log(mark)
    finally:
        digest = [r["digest"] for r in cli_json(sb, "recall", "ls")
                  if r["repo"] == "quick/app"][0]
        cli(sb, "unrecall", digest)
