"""Live monitoring (issue 6, item 2): the cloud keeps every instance's usage
as the agents report it with each heartbeat (GET /api/v1/usage), sees state
changes as events (GET /api/v1/events, also as Server-Sent Events with
?follow=1), and `fogport top` / `fogport events` show them.

One module-wide sandbox: a cloud and one fog whose agent runs the services
(web_service registered at the cloud). Needs root and runc."""
import json
import os
import shutil
import subprocess
import threading
import time

import pytest
import requests

from conftest import FOGPORT
from fedhelp import Sandbox, cli, wait_for
from helpers import images  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"),
                                reason="the agent needs root and runc")


@pytest.fixture(scope="module")
def sb(tmp_path_factory, images):
    s = Sandbox(tmp_path_factory.mktemp("usage"), fogs=1, edges=0).up()
    s.env = dict(os.environ, FOGPORT_CONFIG=s.client_json)
    s.push(images, "web_service:latest", s.cloud)
    yield s
    for name in ("sleeper", "quitter"):
        cli(s, "service", "delete", name, check=False)
    s.down()


def api(sb, path, **params):
    r = requests.get(sb.cloud.url + path, params=params, auth=sb.admin, verify=sb.ca, timeout=10)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


def samples(sb, service, **params):
    return api(sb, "/api/v1/usage", service=service, **params)["samples"]


def events_of(sb, service):
    return [e for e in json.loads(cli(sb, "events", "--json").stdout) if e["service"] == service]


@pytest.fixture(scope="module")
def sleeper(sb):
    """A service that runs (and holds some memory) until deleted."""
    cli(sb, "service", "create", "sleeper", "--image", "web_service:latest", "--node", "fog-1",
        "--entrypoint", "/bin/sh", "--cmd", "-c", "--cmd",
        "x=$(head -c 2000000 /dev/zero | tr '\\0' a); sleep 3600", "--memory", "64M")
    got = wait_for(lambda: [s for s in samples(sb, "sleeper")
                            if s["state"] == "running" and (s["memory"] or 0) > 0], 90, 1)
    assert got, (samples(sb, "sleeper"), sb["fog-1"].log()[-3000:])
    return "sleeper"


def test_usage_history_grows(sb, sleeper):
    """Every heartbeat adds a sample with the instance's usage; filters by
    service, node and time narrow the answer; newest last."""
    first = [s for s in samples(sb, sleeper) if s["state"] == "running"]
    time.sleep(5)  # the sandbox's heartbeat is 2 s
    later = samples(sb, sleeper)
    assert len(later) >= len(first) + 2, (first, later)
    last = later[-1]
    assert last["node"] == "fog-1" and last["service"] == "sleeper" and last["period"] == 1
    assert last["state"] == "running" and last["memory"] > 0 and last["pids"] >= 1, last
    assert last["memory_limit"] == 64 << 20, last
    assert [s["t"] for s in later] == sorted(s["t"] for s in later)
    assert samples(sb, sleeper, node="fog-1") == samples(sb, sleeper, node="fog-1")[:]
    assert samples(sb, sleeper, node="nowhere") == []
    recent = samples(sb, sleeper, since=last["t"])
    assert recent and all(s["t"] >= last["t"] for s in recent)
    assert len(samples(sb, sleeper, limit=2)) == 2
    # operators and nodes only
    r = requests.get(sb.cloud.url + "/api/v1/usage", verify=sb.ca, timeout=10)
    assert r.status_code == 401, r.text
    r = requests.get(sb.cloud.url + "/api/v1/usage", params={"service": "Bad Name"},
                     auth=sb.admin, verify=sb.ca, timeout=10)
    assert r.status_code == 400, r.text


def test_top_once_lists_it_running(sb, sleeper):
    out = cli(sb, "top", "--once").stdout
    assert "\033[" not in out  # one frame for scripts: no screen control
    header = [l for l in out.splitlines() if l.startswith("SERVICE")]
    assert header and all(c in header[0] for c in
                          ("NODE", "STATE", "CPU%", "MEM/LIMIT", "PIDS", "RESTARTS", "OOM"))
    rows = [l.split() for l in out.splitlines() if l.startswith("sleeper ")]
    assert rows and rows[0][1] == "fog-1" and rows[0][2] == "running", out
    assert "/64.0M" in rows[0][5], out


def test_events_show_started(sb, sleeper):
    ev = events_of(sb, sleeper)
    started = [e for e in ev if e["event"] == "started"]
    assert started and started[0]["node"] == "fog-1" and started[0]["state"] == "running", ev
    text = cli(sb, "events").stdout
    assert any("sleeper" in l and "started" in l for l in text.splitlines()), text


def read_sse(sb, seconds, until=None, **params):
    """Events a Server-Sent Events stream of the cloud delivers in seconds,
    or up to the first event for which until() is true."""
    got, lines = [], []
    with requests.get(sb.cloud.url + "/api/v1/events", params=dict(follow=1, **params),
                      auth=sb.admin, verify=sb.ca, stream=True, timeout=(10, seconds + 20)) as r:
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("text/event-stream")
        end = time.time() + seconds

        def closer():
            time.sleep(seconds)
            r.close()  # ends the iteration below
        threading.Thread(target=closer, daemon=True).start()
        try:
            for line in r.iter_lines(decode_unicode=True):
                lines.append(line)
                if line.startswith("data: "):
                    got.append(json.loads(line[6:]))
                    if until and until(got[-1]):
                        break
                if time.time() > end:
                    break
        except Exception:  # the closer cut the connection
            pass
    return got, lines


def test_sse_replays_and_follows(sb, sleeper):
    """The stream first replays the recent events (the sleeper's start),
    then delivers new ones as they come (the quitter's)."""
    got, lines = read_sse(sb, 3, lambda e: e["event"] == "started", service="sleeper")
    assert any(e["event"] == "started" for e in got), lines
    assert any(l.startswith("id: ") for l in lines), lines

    result = {}

    def follow():
        result["events"], result["lines"] = read_sse(sb, 40, lambda e: e["event"] == "exited",
                                                     service="quitter")
    t = threading.Thread(target=follow)
    t.start()
    time.sleep(1)
    cli(sb, "service", "create", "quitter", "--image", "web_service:latest", "--node", "fog-1",
        "--entrypoint", "/bin/sh", "--cmd", "-c", "--cmd", "sleep 3; exit 3",
        "--restart", "never")
    t.join()
    ev = result["events"]
    names = [e["event"] for e in ev]
    assert "exited" in names, result["lines"]
    exited = [e for e in ev if e["event"] == "exited"][0]
    assert exited["exit_code"] == 3 and exited["node"] == "fog-1", exited
    # the same through the JSON API and the CLI
    assert any(e["event"] == "exited" and e["exit_code"] == 3 for e in events_of(sb, "quitter"))
    text = cli(sb, "events", "--service", "quitter").stdout
    assert "exit code 3" in text, text


def test_events_follow_cli(sb, sleeper):
    """`fogport events --follow --json` prints one event a line as they
    come; deleting the service shows as "removed"."""
    p = subprocess.Popen([FOGPORT, "events", "--follow", "--json", "--service", "quitter"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=sb.env)
    try:
        mark = sb["fog-1"].mark()
        cli(sb, "service", "delete", "quitter")
        sb["fog-1"].wait_log(r"event=service_removed service=quitter\b", since=mark, timeout=30)
        seen = []
        deadline = time.time() + 20
        while time.time() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            seen.append(json.loads(line))
            if seen[-1]["event"] == "removed":
                break
        assert [e for e in seen if e["event"] == "exited"], seen  # replayed
        assert seen and seen[-1]["event"] == "removed", seen
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_cloud_stops_with_a_stream_open(sb, sleeper):
    """An open event stream does not hold the cloud's shutdown; it ends."""
    r = requests.get(sb.cloud.url + "/api/v1/events", params={"follow": 1}, auth=sb.admin,
                     verify=sb.ca, stream=True, timeout=(10, 30))
    assert r.status_code == 200
    it = r.iter_lines(decode_unicode=True)
    next(it)
    mark = sb.cloud.mark()
    t0 = time.time()
    sb.cloud.stop()
    assert time.time() - t0 < 10
    sb.cloud.wait_log(r"event=stopped", since=mark, timeout=5)
    try:
        list(it)  # the stream ends (the server closes it) instead of hanging
    except requests.exceptions.ChunkedEncodingError:
        pass
    sb.cloud.start()
