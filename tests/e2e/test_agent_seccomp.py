"""Seccomp (issue 5): every service container runs under the agent's
allowlist profile (src/agent/seccomp.c), with runc and with crun. A busybox
service still serves HTTP and writes its log and files, while the calls that
leave a container (a user namespace, a mount) fail with EPERM.

One sandbox (a cloud, fog-1 with runc, edge-1 under it with crun). Needs
root and both runtimes (skipped otherwise); the crun case is skipped on a
hybrid cgroup host, which crun 1.x refuses."""
import os
import shutil

import pytest
import requests

from fedhelp import Sandbox, wait_for
from helpers import images  # noqa: F401 (fixture)
from test_agent import cli, create, delete, free_port, logs, running, wait_state

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runc") or not shutil.which("crun"),
    reason="needs root, runc and crun")

RUNTIMES = {"fog-1": "runc", "edge-1": "crun"}


def crun_unusable():
    """crun 1.x refuses a hybrid cgroup host (a v2 hierarchy with
    controllers next to v1): docs/agent-runtime.md."""
    try:
        with open("/sys/fs/cgroup/unified/cgroup.controllers") as f:
            return bool(f.read().strip())
    except OSError:
        return False


@pytest.fixture(scope="module")
def sb(tmp_path_factory, images):
    s = Sandbox(tmp_path_factory.mktemp("seccomp"), fogs=1, edges=1).up()
    s.env = dict(os.environ, FOGPORT_CONFIG=s.client_json)
    s.push(images, "web_service:latest", s.cloud)
    try:
        for node, rt in RUNTIMES.items():
            n = s[node]
            n.stop()
            n.set_config("agent", runtime=rt)
            mark = n.mark()
            n.start()
            n.wait_log(rf"event=agent_started runtime=\S*{rt}\b", since=mark, timeout=20)
    except BaseException:
        s.down()
        raise
    yield s
    for sv in cli(s, "service", "ls", "--json", check=False).get("json") or []:
        cli(s, "service", "delete", sv["name"], check=False)
    s.down()


# the service's own shell reports what it may and may not do, then serves
PROBE = ("echo SECCOMP=$(grep '^Seccomp:' /proc/self/status | cut -f2); "
         "unshare -U true; echo UNSHARE_RC=$?; "
         "unshare -m true; echo UNSHARE_M_RC=$?; "
         "mount -t tmpfs none /mnt; echo MOUNT_RC=$?; "
         "echo written > /tmp/f && echo FILE=$(cat /tmp/f); "
         "(sleep 0; echo CHILD=ok) & wait; "
         "exec httpd -f -p {port} -h /www")


@pytest.mark.parametrize("node", [
    "fog-1",
    pytest.param("edge-1", marks=pytest.mark.skipif(
        crun_unusable(), reason="crun refuses this hybrid cgroup host")),
])
def test_service_serves_but_cannot_leave_its_confinement(sb, node):
    port = free_port()
    name = f"sc-{RUNTIMES[node]}"
    create(sb, name, "--image", "web_service:latest", "--node", node, "--port", port,
           "--entrypoint", "/bin/sh", "--cmd", "-c", "--cmd", PROBE.format(port=port),
           "--memory", "32M", "--pids", "32")
    i = wait_state(sb, name, node, running)
    # ordinary work: serving HTTP (socket, bind, accept, sendfile...), a
    # child process, a file in /tmp, lines in the log
    page = wait_for(lambda: (r := requests.get(f"http://127.0.0.1:{port}/", timeout=5))
                    .status_code == 200 and r, 20, 0.3)
    assert page and "web_service" in page.text
    text = wait_for(lambda: "CHILD=ok" in (t := logs(sb, name, node)) and t, 20, 0.5)
    assert text, logs(sb, name, node)
    assert "FILE=written" in text, text
    # the filter is there (mode 2: filter) and says no
    assert "SECCOMP=2" in text, text
    # what the allowlist leaves out fails with EPERM, whatever the capability
    for probe in ("UNSHARE_RC", "UNSHARE_M_RC", "MOUNT_RC"):
        assert f"{probe}=0" not in text, text
    assert "unshare(0x10000000): Operation not permitted" in text, text
    assert "unshare(0x20000): Operation not permitted" in text, text
    assert "mount: permission denied" in text or "Operation not permitted" in text, text
    assert i["restarts"] == 0, i
    delete(sb, name)
