#!/usr/bin/env python3
"""The agent benchmark (issue 5), driven by bench/agent: time from
`fogport service create` to the service answering on its port, cold and
warm, on a fog and on an edge, and the memory of the edge's `fogport serve`
(and of a service's shim). Standard library only.

    agentbench.py run --fogport BIN --layout DIR --work DIR --rounds N
                      [--podman] [--out FILE.json]
    agentbench.py table FILE.json      the Markdown report

Each round is a fresh `fogport sandbox up --fogs 1 --edges 1` (cloud,
fog-1, edge-1 under fog-1; agents on fog-1 and edge-1) with no replication
rules, and the paper's web_service:latest pushed to the cloud only. In it,
on fog-1 and then on edge-1:

  cold    the node holds nothing: its agent pulls the image through the
          node's own registry (fog-1 from the cloud; edge-1 from fog-1,
          which holds it since the fog's runs) and unpacks both layers
  warm    a second service of the same image while the first one runs:
          image in the node's store, layers unpacked and in use
  again   both deleted, then a third created: the image is still in the
          node's store, but the agent pruned the layers no service used any
          more, so it unpacks them again

The edge's memory is sampled idle after start (before any service), with
the cold run's service running alone, and after all were deleted.

A fresh sandbox per round is what makes every cold run cold: the layer
cache is keyed by the layer digest, so a re-tagged image in the same
sandbox would find its layers unpacked already.

The service is web_service with its command replaced by `httpd -f -p PORT
-h /www` (host networking: every run gets its own free port); "answering"
is the first HTTP 200 on http://127.0.0.1:PORT/, polled every 5 ms. The
node's log says when its agent took the definition (event=desired_state),
when the service was deployed (pulled, unpacked, mounted, bundle written)
and when its shim started it.
"""
import argparse
import calendar
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

IMAGE = "web_service:latest"
NO_REPLICATION = "# bench/agent: no replication rules (a cold fog is cold)\n"
POLL_S = 2.0  # the agents' [agent] sync default: how often they ask the cloud
LOG_TIME = re.compile(r"^time=(\S+)Z ")


T_START = time.time()


def say(*a):
    print("[%5.1fs]" % (time.time() - T_START), *a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_ts(line):
    """The wall-clock time of a fogport log line (time=...Z), as a float."""
    m = LOG_TIME.match(line)
    if not m:
        return None
    whole, _, frac = m.group(1).partition(".")
    t = time.strptime(whole, "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) + (float("0." + frac) if frac else 0.0)


# ------------------------------------------------------------------ /proc

def proc_mem(pid):
    """VmRSS, VmHWM, RssAnon, RssFile, RssShmem, Threads (KiB / count) and
    Pss, Private (from smaps_rollup), or None when the process is gone."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Threads"):
                    out[k] = int(v.split()[0])
        with open(f"/proc/{pid}/smaps_rollup") as f:
            priv = 0
            for line in f:
                k, _, v = line.partition(":")
                if k == "Pss":
                    out["Pss"] = int(v.split()[0])
                elif k in ("Private_Clean", "Private_Dirty"):
                    priv += int(v.split()[0])
            out["Private"] = priv
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def find_shim(runtime_root, name):
    """The pid of the `fogport shim` that runs service name under
    runtime_root (the node's DATA/agent/runtime)."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        c = cmdline(d)
        if len(c) > 2 and c[1] == b"shim" and runtime_root.encode() in c and \
                b"--id" in c and c[c.index(b"--id") + 1] == name.encode():
            return int(d)
    return None


def runc_resident(runtime_root):
    """pids of runc processes for this runtime root (there should be none
    while a service just runs)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            c = cmdline(d)
            if c and os.path.basename(c[0].decode(errors="replace")) in ("runc", "crun") and \
                    runtime_root.encode() in c:
                out.append(int(d))
    return out


# ------------------------------------------------------------------ a sandbox

class Sandbox:
    def __init__(self, fogport, path, edge_binary=None):
        self.fogport = fogport
        self.edge_binary = edge_binary
        self.dir = path
        self.up_at = None

    def run(self, *args, check=True, timeout=60):
        env = dict(os.environ, FOGPORT_CONFIG=os.path.join(self.dir, "client.json"))
        r = subprocess.run([self.fogport, *map(str, args)], capture_output=True, text=True,
                           env=env, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"fogport {' '.join(map(str, args))}: rc {r.returncode}\n"
                               f"{r.stdout}{r.stderr}")
        return r

    def up(self):
        os.makedirs(self.dir, mode=0o700)
        with open(os.path.join(self.dir, "replication"), "w") as f:
            f.write(NO_REPLICATION)
        edge = ["--edge-binary", self.edge_binary] if self.edge_binary else []
        self.run("sandbox", "up", "--dir", self.dir, "--fogs", 1, "--edges", 1, *edge)
        self.up_at = time.time()
        with open(os.path.join(self.dir, "topology.json")) as f:
            self.topo = json.load(f)
        self.nodes = {n["id"]: n for n in self.topo["nodes"]}
        for nid in ("fog-1", "edge-1"):
            with open(self.nodes[nid]["config"]) as f:
                if "[agent]" not in f.read():
                    raise RuntimeError(f"{nid} runs no agent (sandbox up enables agents only "
                                       "as root with runc or crun)")
        self.certs = os.path.join(self.dir, "certs")
        os.makedirs(self.certs, exist_ok=True)
        shutil.copy(self.topo["ca"], os.path.join(self.certs, "ca.crt"))
        return self

    def down(self):
        if os.path.exists(os.path.join(self.dir, "topology.json")):
            self.run("sandbox", "down", "--dir", self.dir, check=False, timeout=120)
        left = {}
        for nid in ("fog-1", "edge-1"):
            root = self.runtime_root(nid)
            if os.path.isdir(root):
                r = subprocess.run(["runc", "--root", root, "list", "-q"], capture_output=True,
                                   text=True, timeout=30)
                if r.stdout.split():
                    left[nid] = r.stdout.split()
        return left

    def push(self, layout, ref):
        pw = self.topo["admin"]["password"]
        host = self.nodes["cloud"]["registry"].split("://", 1)[1]
        r = subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-cert-dir",
                            self.certs, "--dest-creds", f"admin:{pw}", f"oci:{layout}:{ref}",
                            f"docker://{host}/{ref}"], capture_output=True, text=True,
                           timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"skopeo push {ref}: {r.stderr}")

    def log_path(self, nid):
        return os.path.join(self.nodes[nid]["data"], "serve.log")

    def mark(self, nid):
        try:
            return os.path.getsize(self.log_path(nid))
        except FileNotFoundError:
            return 0

    def log(self, nid, since=0):
        with open(self.log_path(nid), "rb") as f:
            f.seek(since)
            return f.read().decode(errors="replace")

    def wait_log(self, nid, pattern, since, timeout):
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in self.log(nid, since).splitlines():
                if rx.search(line):
                    return line
            time.sleep(0.05)
        return None

    def pid(self, nid):
        return self.nodes[nid]["pid"]

    def runtime_root(self, nid):
        return os.path.join(self.nodes[nid]["data"], "data", "agent", "runtime")


def wait_answer(port, timeout):
    """Poll GET / every 5 ms until it answers 200; the time it did, or None."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            c.request("GET", "/")
            r = c.getresponse()
            body = r.read()
            if r.status == 200 and b"web_service" in body:
                return time.time()
        except OSError:
            pass
        finally:
            c.close()
        time.sleep(0.005)
    return None


def create_and_time(sb, nid, name, port, timeout=90):
    """service create → first 200; phases from the node's log."""
    mark = sb.mark(nid)
    t0 = time.time()
    sb.run("service", "create", name, "--image", IMAGE, "--node", nid, "--port", port,
           "--cmd", "httpd", "--cmd", "-f", "--cmd", "-p", "--cmd", port, "--cmd", "-h",
           "--cmd", "/www", "--memory", "32M", "--pids", "32", "--stop-grace", 0)
    t_cli = time.time()
    t_ans = wait_answer(port, timeout)
    if t_ans is None:
        raise RuntimeError(f"{name} on {nid} did not answer on port {port} within {timeout} s; "
                           f"log:\n{sb.log(nid, mark)[-3000:]}")
    time.sleep(0.1)  # the last log lines
    text = sb.log(nid, mark)
    ev = {}
    pulled = unpacked = 0
    fetched = None
    for line in text.splitlines():
        ts = log_ts(line)
        if "event=desired_state " in line and "took" not in ev:
            ev["took"] = ts
        elif f"event=service_deployed service={name} " in line:
            ev["deployed"] = ts
            m = re.search(r"fetched_bytes=(\d+)", line)
            fetched = int(m.group(1)) if m else None
        elif f"event=service_started service={name} " in line:
            ev["started"] = ts
        elif "event=pulled " in line:
            pulled += 1
        elif "event=layer_unpacked " in line:
            unpacked += 1
    rec = {"node": nid, "name": name, "port": port, "t0": t0, "cli": t_cli - t0,
           "total": t_ans - t0, "pulled": pulled, "unpacked": unpacked, "fetched": fetched}
    if all(k in ev and ev[k] for k in ("took", "deployed", "started")):
        rec.update(wait=ev["took"] - t0, deploy=ev["deployed"] - ev["took"],
                   start=ev["started"] - ev["deployed"], up=t_ans - ev["started"],
                   agent=t_ans - ev["took"])
    return rec


def delete_and_wait(sb, nid, name):
    mark = sb.mark(nid)
    sb.run("service", "delete", name)
    if not sb.wait_log(nid, rf"event=service_removed service={name}\b", mark, 30):
        raise RuntimeError(f"{nid} did not remove {name}:\n{sb.log(nid, mark)[-2000:]}")


def mem_sample(sb, nid):
    m = proc_mem(sb.pid(nid))
    if m is None:
        raise RuntimeError(f"{nid} (pid {sb.pid(nid)}) is gone")
    return m


# ------------------------------------------------------------------ podman

def podman_rounds(layout, work, rounds, results):
    """podman run of the same image from the OCI layout to its first 200:
    cold (fresh storage: the image is copied in from the layout, then run)
    and warm (image in storage; a second container)."""
    if not shutil.which("podman"):
        results["podman_note"] = "podman not installed"
        return
    ver = subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout.split()
    results["podman_version"] = ver[-1] if ver else "?"
    # podman names an image from an oci: path after the path, which must be
    # lower case (mktemp's work dir is not)
    lay = f"/dev/shm/fpab-{os.getpid()}-layout"
    shutil.rmtree(lay, ignore_errors=True)
    shutil.copytree(layout, lay)
    try:
        _podman_rounds(lay, work, rounds, results)
    finally:
        shutil.rmtree(lay, ignore_errors=True)


def _podman_rounds(layout, work, rounds, results):
    for r in range(1, rounds + 1):
        root = os.path.join(work, f"podman-{r}")
        run = f"/dev/shm/fpab-{os.getpid()}-{r}"  # podman wants a short runroot
        base = ["podman", "--root", os.path.join(root, "root"), "--runroot", run, "--tmpdir",
                os.path.join(root, "tmp"), "--cgroup-manager", "cgroupfs", "--events-backend",
                "none", "--runtime", "runc"]
        names = []
        try:
            for kind in ("cold", "warm"):
                port = free_port()
                name = f"fpab-{os.getpid()}-{r}-{kind}"
                names.append(name)
                t0 = time.time()
                p = subprocess.run([*base, "run", "-d", "--name", name, "--network", "host",
                                    "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
                                    "--memory", "32m", "--pids-limit", "32",
                                    "--log-driver", "k8s-file", f"oci:{layout}:{IMAGE}",
                                    "httpd", "-f", "-p", str(port), "-h", "/www"],
                                   capture_output=True, text=True, timeout=120)
                if p.returncode != 0:
                    results["podman_note"] = "podman run failed: " + p.stderr.strip()[-300:]
                    return
                t_ans = wait_answer(port, 60)
                if t_ans is None:
                    results["podman_note"] = "the podman container did not answer"
                    return
                results.setdefault("podman", []).append(
                    {"round": r, "kind": kind, "total": t_ans - t0})
                subprocess.run([*base, "rm", "-f", "-t", "0", name], capture_output=True,
                               timeout=60)
        finally:
            for name in names:
                subprocess.run([*base, "rm", "-f", "-t", "0", name], capture_output=True,
                               timeout=60)
            # (not `podman system reset`: the lock segment in /dev/shm is
            # shared with every other podman on the machine)
            subprocess.run([*base, "rmi", "-a", "-f"], capture_output=True, timeout=120)
            subprocess.run(["umount", "-R", os.path.join(root, "root", "overlay")],
                           capture_output=True, timeout=30)
            shutil.rmtree(root, ignore_errors=True)
            shutil.rmtree(run, ignore_errors=True)


# ------------------------------------------------------------------ run

KINDS = ("cold", "warm", "again")


def timed(sb, results, r, nid, kind, name):
    port = free_port()
    # a create lands anywhere in the agent's poll cycle, not in step with
    # the previous run
    time.sleep(random.uniform(0, POLL_S))
    rec = create_and_time(sb, nid, name, port)
    rec.update(round=r, kind=kind)
    results["runs"].append(rec)
    say("   %s %s: create → 200 in %.3f s (agent took it after %s s; deploy %s s, start %s s, "
        "up %s s; %d pulled, %d unpacked)" % (
            nid, kind, rec["total"], fmt(rec.get("wait")), fmt(rec.get("deploy")),
            fmt(rec.get("start")), fmt(rec.get("up")), rec["pulled"], rec["unpacked"]))
    return rec


def cmd_run(a):
    results = {"rounds": a.rounds, "runs": [], "mem": [], "left": {}, "started": time.time(),
               "edge_binary": a.edge_binary}
    tag = "%04x" % random.randrange(1 << 16)  # service names unique to this run
    for r in range(1, a.rounds + 1):
        sb = Sandbox(a.fogport, os.path.join(a.work, f"sb-{r}"), a.edge_binary)
        try:
            say(f"== round {r}/{a.rounds}: sandbox up (cloud, fog-1, edge-1), push {IMAGE}")
            sb.up()
            sb.push(a.layout, IMAGE)
            mem = {"round": r}
            # the edge idle after start: no service has run on it yet
            while time.time() < sb.up_at + a.settle:
                time.sleep(0.1)
            mem["edge_idle"] = mem_sample(sb, "edge-1")
            mem["fog_idle"] = mem_sample(sb, "fog-1")
            for nid in ("fog-1", "edge-1"):
                first = f"ab{tag}-r{r}-{nid[0]}c"
                timed(sb, results, r, nid, "cold", first)
                if nid == "edge-1":  # the edge with one service running
                    time.sleep(a.settle_service)
                    mem["edge_running"] = mem_sample(sb, "edge-1")
                    shim = find_shim(sb.runtime_root("edge-1"), first)
                    mem["shim"] = proc_mem(shim) if shim else None
                    mem["runc_resident"] = len(runc_resident(sb.runtime_root("edge-1")))
                # warm: a second service of the same image while the first
                # runs (image held, layers unpacked and in use)
                second = f"ab{tag}-r{r}-{nid[0]}w"
                timed(sb, results, r, nid, "warm", second)
                delete_and_wait(sb, nid, second)
                delete_and_wait(sb, nid, first)
                # again: created anew once none runs; the node holds the image
                # in its registry, but the agent pruned the layers no service
                # used any more, so they are unpacked again
                third = f"ab{tag}-r{r}-{nid[0]}a"
                timed(sb, results, r, nid, "again", third)
                delete_and_wait(sb, nid, third)
            time.sleep(a.settle_service)
            mem["edge_after"] = mem_sample(sb, "edge-1")
            mem["fog_after"] = mem_sample(sb, "fog-1")
            results["mem"].append(mem)
            say("   edge fogport serve: VmRSS idle %.1f MiB, with a service %.1f MiB, after %.1f "
                "MiB, VmHWM %.1f MiB; shim %s" % (
                    mem["edge_idle"]["VmRSS"] / 1024, mem["edge_running"]["VmRSS"] / 1024,
                    mem["edge_after"]["VmRSS"] / 1024, mem["edge_after"]["VmHWM"] / 1024,
                    "%.1f MiB" % (mem["shim"]["VmRSS"] / 1024) if mem.get("shim") else "?"))
        finally:
            left = sb.down()
            if left:
                results["left"][f"round {r}"] = left
    if a.podman:
        say("== podman reference: podman run of the same image from the OCI layout")
        podman_rounds(a.layout, a.work, a.rounds, results)
    results["ended"] = time.time()
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)


def fmt(v, d=3):
    return "?" if v is None else ("%." + str(d) + "f") % v


# ------------------------------------------------------------------ table

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


CASE = {
    "cold": "cold: the image only at the cloud (the edge: at its fog)",
    "warm": "warm: a second service of the image while the first runs",
    "again": "again: created anew after the node's services of it were deleted",
}


def cmd_table(a):
    with open(a.file) as f:
        res = json.load(f)
    runs = res["runs"]

    def cell(v, d=2):
        return "—" if v is None else f"{v:.{d}f}"

    def m(node, kind, key):
        return med([r.get(key) for r in runs if r["node"] == node and r["kind"] == kind])

    print(f"Rounds: {res['rounds']} (a fresh sandbox each); medians of the rounds, in seconds.")
    print()
    print("| Node, case | create → answering | create → the agent took it | agent took it → "
          "answering | … deploy | … start | … started → 200 | blobs pulled | layers unpacked |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for node in ("fog-1", "edge-1"):
        for kind in KINDS:
            if not any(r["node"] == node and r["kind"] == kind for r in runs):
                continue
            print(f"| {node}, {CASE[kind]} | **{cell(m(node, kind, 'total'))}** | "
                  f"{cell(m(node, kind, 'wait'))} | **{cell(m(node, kind, 'agent'), 3)}** | "
                  f"{cell(m(node, kind, 'deploy'), 3)} | {cell(m(node, kind, 'start'), 3)} | "
                  f"{cell(m(node, kind, 'up'), 3)} | {cell(m(node, kind, 'pulled'), 0)} | "
                  f"{cell(m(node, kind, 'unpacked'), 0)} |")
    pm = res.get("podman") or []
    for kind, what in (("cold", "cold: fresh storage, image copied in from the OCI layout"),
                       ("warm", "warm: image in storage")):
        v = med([p["total"] for p in pm if p["kind"] == kind])
        if v is not None:
            print(f"| podman {res.get('podman_version', '')} run (this host), {what} | "
                  f"**{cell(v)}** | | | | | | | |")
    print()

    def ratio(node, key, x, y):
        a_, b_ = m(node, x, key), m(node, y, key)
        return "—" if a_ is None or not b_ else f"{a_ / b_:.2f}×"
    for node in ("fog-1", "edge-1"):
        print(f"- {node}: cold ÷ warm {ratio(node, 'total', 'cold', 'warm')} create → answering, "
              f"{ratio(node, 'agent', 'cold', 'warm')} agent took it → answering; again ÷ warm "
              f"{ratio(node, 'agent', 'again', 'warm')} (agent took it → answering)")
    if pm:
        print("- podman: `podman run -d --network host --runtime runc` (cgroupfs, overlay storage on "
              "tmpfs, k8s-file log) of `oci:LAYOUT:web_service:latest` with the same command, to "
              "its first 200; cold with a fresh storage root (the image is copied in from a local "
              "layout: no registry, no network, no TLS), warm with the image in storage.")
    elif res.get("podman_note"):
        print(f"- podman: {res['podman_note']}")
    print()
    print("<details><summary>Per run (s)</summary>")
    print()
    for node in ("fog-1", "edge-1"):
        for kind in KINDS:
            vals = [r for r in runs if r["node"] == node and r["kind"] == kind]
            if vals:
                print(f"- {node} {kind}: create → answering " +
                      ", ".join(fmt(r["total"], 3) for r in vals) + "; agent took it → answering " +
                      ", ".join(fmt(r.get("agent"), 3) for r in vals))
    for kind in ("cold", "warm"):
        if any(p["kind"] == kind for p in pm):
            print(f"- podman {kind}: " +
                  ", ".join(fmt(p["total"], 3) for p in pm if p["kind"] == kind))
    print()
    print("</details>")
    print()

    # memory
    mem = res["mem"]

    def mm(key, field):
        if field == "RssFile":  # a binary on tmpfs is mapped as shared memory
            return med([(x[key]["RssFile"] + x[key].get("RssShmem", 0)) / 1024
                        for x in mem if x.get(key)])
        return med([x[key][field] / 1024 for x in mem if x.get(key) and field in x[key]])

    edge_build = ("the static edge build, `make edge`" if res.get("edge_binary")
                  else "the release build, as the fog")
    print(f"Memory of the edge's `fogport serve` ({edge_build}; `/proc/PID/status` and "
          "`smaps_rollup`; RssFile counts RssShmem too: the benchmark runs its binaries "
          "from tmpfs), MiB, median of the rounds:")
    print()
    print("| When | VmRSS | RssAnon | RssFile | Pss | Private | VmHWM | Threads | Target | Met |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|---|:-:|")

    def memrow(label, key, target=True):
        rss = mm(key, "VmRSS")
        th = med([x[key]["Threads"] for x in mem if x.get(key)])
        met = "" if not target or rss is None else ("✅" if rss <= 8.0 else "❌")
        print(f"| {label} | {cell(rss, 1)} | {cell(mm(key, 'RssAnon'), 1)} | "
              f"{cell(mm(key, 'RssFile'), 1)} | {cell(mm(key, 'Pss'), 1)} | "
              f"{cell(mm(key, 'Private'), 1)} | {cell(mm(key, 'VmHWM'), 1)} | "
              f"{'—' if th is None else int(th)} | {'≤ 8 MiB' if target else ''} | {met} |")
    memrow("edge, idle after start (no service yet)", "edge_idle")
    memrow("edge, one service running", "edge_running")
    memrow("edge, idle after its services were deleted", "edge_after")
    memrow("the service's shim (`fogport shim`)", "shim", target=False)
    memrow("fog, idle after start (release build, for comparison)", "fog_idle", target=False)
    resident = [x.get("runc_resident") for x in mem if x.get("runc_resident") is not None]
    print()
    print("runc resident while the service runs: " +
          ("no (no runc process with the edge's runtime root in any round)"
           if resident and not any(resident) else f"{resident}"))
    if res.get("left"):
        print()
        print(f"**containers left after sandbox down**: {res['left']}")


def main():
    # bench/agent stops the run with SIGTERM: leave through the finally
    # clauses, which take the sandbox down
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--fogport", required=True)
    r.add_argument("--layout", required=True)
    r.add_argument("--work", required=True)
    r.add_argument("--rounds", type=int, default=5)
    r.add_argument("--podman", action="store_true")
    r.add_argument("--edge-binary", help="run edge-1 from this fogport (sandbox up --edge-binary)")
    r.add_argument("--settle", type=float, default=5.0,
                   help="seconds after sandbox up before the idle memory sample")
    r.add_argument("--settle-service", type=float, default=3.0)
    r.add_argument("--out", required=True)
    t = sub.add_parser("table")
    t.add_argument("file")
    a = p.parse_args()
    if a.cmd == "run":
        cmd_run(a)
    else:
        cmd_table(a)


if __name__ == "__main__":
    main()
