"""`fogport sandbox up --netns` (issue 4): every node its own host in a network
namespace of its own, with its own address on a bridge of the host, the
cloud's uplink and the fog-to-fog links shaped with tc; the federation works
across the namespaces (replication, pull-through by an edge, a fog's own
service taken from the fog that registered it), the shaping is measurable,
and `sandbox down` leaves no namespace, veth or bridge behind.

Needs root and `ip netns`; skipped otherwise. One module-wide sandbox: a
cloud (uplink 50 Mbit/s), three fogs (400 Mbit/s to each other) and an edge
under fog-1."""
import ipaddress
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time

import pytest
import requests

from conftest import FOGPORT
from fedhelp import ENV, Sandbox, fogport, gz_layer, layout_blobs_ok, pid_alive, push_image, sha256
from helpers import images  # noqa: F401 (fixture)

UPLINK, PEER = 50, 400
FOGS = ["fog-1", "fog-2", "fog-3"]
SANITIZER = re.compile(r"AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:|LeakSanitizer")


def netns_works():
    if os.geteuid() != 0:
        return False
    try:
        return subprocess.run(["ip", "netns", "list"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = pytest.mark.skipif(not netns_works(), reason="needs root and `ip netns`")


def sh(*args):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"{' '.join(map(str, args))}: {r.stderr}"
    return r.stdout


def port_open(host, port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def peer_cert_ips(node, ca):
    """The IP addresses in the certificate a node presents (verified against
    the sandbox CA, for the node's address)."""
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection((node.address, int(node.url.rsplit(":", 1)[1])), 5) as raw:
        with ctx.wrap_socket(raw, server_hostname=node.address) as tls:
            return {v for k, v in tls.getpeercert()["subjectAltName"] if k == "IP Address"}


def wait_held(sb, node, repo, ref, blobs, timeout=30):
    """Until node holds the manifest ref and every blob (replication)."""
    s = sb.session(node, repo)
    want = [f"manifests/{ref}"] + [f"blobs/{d}" for d in blobs]
    deadline = time.time() + timeout
    while want and time.time() < deadline:
        want = [p for p in want if s.head(f"{node.url}/v2/{repo}/{p}", timeout=10,
                                          headers={"Fogport-Peer": "1"}).status_code != 200]
        if want:
            time.sleep(0.2)
    assert not want, f"{node.id} does not hold {repo}: {want}\n{node.log()[-3000:]}"


class World:
    pass


@pytest.fixture(scope="module")
def world(tmp_path_factory, images):  # noqa: F811
    d = tmp_path_factory.mktemp("netns")
    w = World()
    w.images, w.tmp = images, d
    w.lo_5000_before = port_open("127.0.0.1", 5000)
    # replication=None: the sandbox's own rule, every service to every fog
    sb = Sandbox(d / "sb", fogs=3, edges=1, replication=None,
                 args=["--netns", "--uplink-mbit", UPLINK, "--peer-mbit", PEER])
    w.sb = sb
    try:
        sb.up()
        w.topo = sb.topo
        w.net = sb.topo["netns"]
        # fog-3 learns fog-2 as a peer from the cloud's directory (read every
        # 10 s): a probe under fog-2's name tells when it has
        w.probe = push_image(sb.session(sb["fog-2"], "fog-2/probe", "pull,push"), sb["fog-2"],
                             "fog-2/probe", "1", [gz_layer(100)], label="probe")[0]
        yield w
        for n in sb.nodes.values():
            m = SANITIZER.search(n.log())
            assert not m, f"{n.id}: sanitizer report:\n{n.log()[m.start():][:3000]}"
    finally:
        sb.down()


def test_options_checked(tmp_path):
    """--netns needs root (a clear error, nothing created); the shaping
    options need --netns and a positive rate."""
    d = tmp_path / "sb"
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) not found")
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", FOGPORT,
                        "sandbox", "up", "--dir", str(d), "--netns"], capture_output=True,
                       text=True, env=ENV, timeout=30)
    assert r.returncode == 1 and "sandbox --netns needs root" in r.stderr, r.stderr
    assert not d.exists()
    for args in (["--uplink-mbit", "50"], ["--peer-mbit", "400"]):
        r = fogport("sandbox", "up", "--dir", d, *args, check=False)
        assert r.returncode == 2 and "give --netns too" in r.stderr, r.stderr
    r = fogport("sandbox", "up", "--dir", d, "--netns", "--uplink-mbit", "0", check=False)
    assert r.returncode == 2 and "Mbit/s" in r.stderr, r.stderr
    assert not d.exists()


def test_each_node_its_own_host(world):
    """A namespace per node, named per sandbox; an address of the sandbox's
    /24 per node, on eth0 inside; the node listens there only (not on the
    host's loopback), and its certificate names that address."""
    sb, net = world.sb, world.net
    subnet = ipaddress.ip_network(net["subnet"])
    assert net["port"] == 5000 and re.fullmatch(r"[0-9a-f]{6}", net["id"])
    assert ipaddress.ip_address(net["gateway"]) in subnet
    listed = {l.split()[0] for l in sh("ip", "netns", "list").splitlines() if l.strip()}
    names, addrs = set(), set()
    for n in sb.nodes.values():
        assert n.netns and n.netns.startswith(f"fp-{net['id']}-") and n.netns in listed, n.netns
        assert ipaddress.ip_address(n.address) in subnet, n.address
        assert n.url == f"https://{n.address}:5000"
        names.add(n.netns)
        addrs.add(n.address)
        inside = json.loads(sh("ip", "-n", n.netns, "-j", "-4", "addr", "show", "dev", "eth0"))
        assert [a["local"] for a in inside[0]["addr_info"]] == [n.address]
        listening = sh("ip", "netns", "exec", n.netns, "ss", "-Hltn").split()
        assert [x for x in listening if x.endswith(":5000")] == [f"{n.address}:5000"], listening
        assert n.address in peer_cert_ips(n, sb.ca), n.id
        # the process runs in that namespace
        assert os.stat(f"/proc/{n.pid}/ns/net").st_ino == os.stat(f"/run/netns/{n.netns}").st_ino
        r = requests.get(n.url + "/v2/", verify=sb.ca, timeout=5)
        assert r.status_code == 401
    assert len(names) == len(addrs) == 5
    assert net["gateway"] not in addrs
    if not world.lo_5000_before:
        assert not port_open("127.0.0.1", 5000), "a node listens on the host's loopback"
    # interface names fit the kernel's 15 characters
    links = json.loads(sh("ip", "-j", "link", "show"))
    ours = [l["ifname"] for l in links if net["id"] in l["ifname"]]
    assert net["bridge"] in ours and len(ours) == 6 and all(len(x) <= 15 for x in ours), ours


def test_links_shaped(world):
    """The cloud's eth0 sends at most 50 Mbit/s (tbf); each fog's eth0 has an
    htb class at 400 Mbit/s per other fog, matched by destination; an edge's
    link is not shaped."""
    sb = world.sb
    q = json.loads(sh("tc", "-j", "-n", sb.cloud.netns, "qdisc", "show", "dev", "eth0"))
    root = [x for x in q if x.get("root")]
    assert root and root[0]["kind"] == "tbf", q
    assert root[0]["options"]["rate"] == UPLINK * 1000 * 1000 // 8, q
    for f in FOGS:
        fog = sb[f]
        q = json.loads(sh("tc", "-j", "-n", fog.netns, "qdisc", "show", "dev", "eth0"))
        assert [x["kind"] for x in q if x.get("root")] == ["htb"], q
        classes = sh("tc", "-n", fog.netns, "class", "show", "dev", "eth0")
        rates = re.findall(r"class htb (\S+) .*? rate (\S+) ceil (\S+)", classes)
        assert len(rates) == 2 and all(r == c == f"{PEER}Mbit" for _, r, c in rates), classes
        filters = sh("tc", "-n", fog.netns, "filter", "show", "dev", "eth0")
        matched = {str(ipaddress.ip_address(int(h, 16)))
                   for h in re.findall(r"match ([0-9a-f]{8})/ffffffff at 16", filters)}
        assert matched == {sb[o].address for o in FOGS if o != f}, filters
    q = sh("tc", "-n", sb["edge-1"].netns, "qdisc", "show", "dev", "eth0")
    assert "tbf" not in q and "htb" not in q, q


def test_replication_across_namespaces(world):
    """A service pushed to the cloud with skopeo reaches every fog by
    replication (each fog calling from its own address), skopeo pulls it from
    a fog, and the edge pulls it through its fog."""
    sb, images = world.sb, world.images
    ref = "iot_service:1.0"
    sb.push(images, ref, sb.cloud)
    want = images.descriptor(ref)["digest"]
    blobs = images.image_blobs(want)
    for f in FOGS:
        wait_held(sb, sb[f], "iot_service", "1.0", blobs)
    # every fog asked the cloud from its own address
    for line in sb.cloud.lines(r"user=fog-\d "):
        user = re.search(r"user=(fog-\d)", line).group(1)
        assert f"remote={sb[user].address} " in line, line
    out = str(world.tmp / "from-fog-2")
    assert sb.pull(sb["fog-2"], ref, out) == want
    assert layout_blobs_ok(out) == len(blobs) + 1

    edge, fog1 = sb["edge-1"], sb["fog-1"]
    me, mf = edge.mark(), fog1.mark()
    out = str(world.tmp / "from-edge")
    assert sb.pull(edge, ref, out) == want
    assert layout_blobs_ok(out) == len(blobs) + 1
    edge.wait_log(rf"event=pulled kind=manifest repo=iot_service ref=1.0 digest={want} "
                  rf"source=parent\b", since=me)
    fog1.wait_log(rf'remote={edge.address} user=edge-1 method=GET '
                  rf'path="/v2/iot_service/manifests/1.0" status=200', since=mf)
    assert not sb.cloud.lines(r'user=edge-1 method=GET path="/v2/\w+/(manifests|blobs)/')


def test_fog_service_from_peer(world):
    """A service registered at fog-2 is pulled by fog-3 from fog-2 over the
    fog-to-fog link; the cloud is never asked for it."""
    sb = world.sb
    fog2, fog3, cloud = sb["fog-2"], sb["fog-3"], sb.cloud
    s3 = sb.session(fog3, "fog-2/probe")
    deadline = time.time() + 25
    while s3.get(f"{fog3.url}/v2/fog-2/probe/manifests/1", timeout=10).status_code != 200:
        assert time.time() < deadline, "fog-3 never learnt fog-2 from the directory"
        time.sleep(0.5)

    s = sb.session(fog2, "fog-2/app", "pull,push")
    layers = [gz_layer(300_000), gz_layer(5000)]
    digest, _, config = push_image(s, fog2, "fog-2/app", "1", layers, label="fog-2 app")
    blobs = [sha256(config)] + [sha256(b) for b in layers]
    m3, m2 = fog3.mark(), fog2.mark()
    out = str(world.tmp / "fog3-app")
    assert sb.pull(fog3, "fog-2/app:1", out) == digest
    assert layout_blobs_ok(out) == len(blobs) + 1
    fog3.wait_log(rf"event=pulled kind=manifest repo=fog-2/app ref=1 digest={digest} "
                  rf"source=fog-2\b", since=m3)
    for d in blobs:
        fog3.wait_log(rf"event=pulled kind=blob repo=fog-2/app digest={d} .*source=fog-2\b",
                      since=m3)
        fog2.wait_log(rf'remote={fog3.address} user=fog-3 method=GET '
                      rf'path="/v2/fog-2/app/blobs/{d}" status=200', since=m2)
    time.sleep(0.3)
    asked = cloud.lines(r'path="/v2/fog-2/app/')
    assert not asked, "the cloud was asked for fog-2/app:\n" + "\n".join(asked)


def timed_get(sb, node, repo, digest, size):
    s = sb.session(node, repo)
    t0 = time.monotonic()
    r = s.get(f"{node.url}/v2/{repo}/blobs/{digest}", timeout=60)
    took = time.monotonic() - t0
    assert r.status_code == 200 and len(r.content) == size and sha256(r.content) == digest
    return took


def test_shaping_is_real(world):
    """An 8 MiB blob takes at least 80 % of its line time at 50 Mbit/s from the
    cloud, and comes at least 3x faster from a fog (which sends to the host
    unshaped). Replicating it, the fogs passed it to each other through
    their 400 Mbit/s peer classes."""
    sb = world.sb
    layer = gz_layer(8 << 20)
    size, d = len(layer), sha256(layer)
    sent0 = {f: peer_class_bytes(sb[f]) for f in FOGS}
    cs = sb.session(sb.cloud, "shaping", "pull,push")
    push_image(cs, sb.cloud, "shaping", "1", [layer], label="shaping")
    for f in FOGS:
        wait_held(sb, sb[f], "shaping", "1", [d], timeout=45)
    through_peers = sum(peer_class_bytes(sb[f]) - sent0[f] for f in FOGS)

    t_cloud = timed_get(sb, sb.cloud, "shaping", d, size)
    t_fog = min(timed_get(sb, sb[f], "shaping", d, size) for f in FOGS)
    line = size * 8 / (UPLINK * 1e6)
    print(f"8 MiB blob: cloud {t_cloud:.2f} s (line time {line:.2f} s), fastest fog "
          f"{t_fog:.2f} s; {through_peers} B through the fogs' peer classes")
    assert t_cloud >= 0.8 * line, f"cloud: {t_cloud:.2f}s for {size} B, line time {line:.2f}s"
    assert t_cloud >= 3 * t_fog, f"cloud {t_cloud:.2f}s vs fastest fog {t_fog:.2f}s"
    # at least one fog took it from another (the replication seed)
    assert through_peers >= size, f"{through_peers} B through the fogs' peer classes"


def peer_class_bytes(node):
    out = sh("tc", "-s", "-n", node.netns, "class", "show", "dev", "eth0")
    return sum(int(x) for x in re.findall(r"Sent (\d+) bytes", out))


def test_down_leaves_nothing(world):
    """`sandbox down` stops every node and removes the namespaces, veths and
    bridge (the qdiscs go with them); the record of the network goes too."""
    sb, net = world.sb, world.net
    pids = [n.pid for n in sb.nodes.values()]
    r = sb.down()
    assert r.returncode == 0, r.stderr
    assert "5 nodes stopped" in r.stdout
    assert not any(pid_alive(p) for p in pids)
    listed = sh("ip", "netns", "list")
    assert f"fp-{net['id']}-" not in listed, listed
    links = sh("ip", "-br", "link", "show")
    assert net["id"] not in links, links
    assert not os.path.exists(os.path.join(sb.dir, "netns.json"))
    assert not os.path.exists(os.path.join(sb.dir, "topology.json"))
    sb.nodes = {}  # the fixture's down finds nothing more to stop
