#!/usr/bin/env python3
"""The controller benchmark (issue 6), driven by bench/control. Two parts:

    controlbench.py failover  --fogport BIN --layout DIR --work DIR --trials N --out FILE.json
    controlbench.py heartbeat --fogport BIN --work DIR --steps 50,100,... --out FILE.json
    controlbench.py table FILE.json...         the Markdown report

failover: `fogport sandbox up --netns --fogs 2 --edges 0` (every fog its own
host, so a service keeps its port when it moves; heartbeats every 2 s, the
cloud's suspect_after 3 s and dead_after 6 s). web_service runs always-on on
fog-1. A trial kills -9 the fog that runs it (its `fogport serve` and its
container: the host fails) and measures, from the kill, the time until
`fogport nodes` shows the fog `dead` (polled every 0.1 s) and the time until
the service answers (HTTP 200, polled every 20 ms) on the other fog. Then
the killed fog is started again and waits to be `up`; the next trial kills
the fog that runs the service now.

heartbeat: `fogport sandbox up --fogs 1 --edges 0`; N simulated nodes, each
joined for real (a one-time token from `fogport node token create` on the
cloud's data directory, as an operator makes them, spent at POST
/api/v1/join with a certificate request, which returns the node's
credential), each sending the agents' heartbeat (POST /api/v1/heartbeat
with its url, parent, capacity, used, labels, memory and an empty instance
list, Basic auth with its credential) once a second, spread evenly over the
second, over kept-alive HTTPS connections (as the agents' libcurl keeps
them). N steps up; at each step the cloud's CPU (utime+stime from
/proc/PID/stat) is measured over a window after a warm-up.

Standard library only. Reuses bench/agentbench.py (its sandbox, log and
timing helpers) and bench/fpbench.py (CPU of a process tree).
"""
import argparse
import base64
import http.client
import json
import multiprocessing
import os
import ssl
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agentbench  # noqa: E402
from agentbench import say  # noqa: E402
from fpbench import cpu_seconds  # noqa: E402

PORT = 18095  # the service's port, the same on every fog (netns)
HTTPD = ["--cmd", "httpd", "--cmd", "-f", "--cmd", "-p", "--cmd", str(PORT), "--cmd", "-h",
         "--cmd", "/www"]


class Sandbox(agentbench.Sandbox):
    """agentbench's sandbox with the topology this benchmark needs."""

    def __init__(self, fogport, path, fogs, netns):
        super().__init__(fogport, path)
        self.fogs, self.netns = fogs, netns

    def up(self):
        os.makedirs(self.dir, mode=0o700)
        with open(os.path.join(self.dir, "replication"), "w") as f:
            f.write(agentbench.NO_REPLICATION)
        self.run("sandbox", "up", "--dir", self.dir, "--fogs", self.fogs, "--edges", 0,
                 *(["--netns"] if self.netns else []), timeout=180)
        self.up_at = time.time()
        with open(os.path.join(self.dir, "topology.json")) as f:
            self.topo = json.load(f)
        self.nodes = {n["id"]: n for n in self.topo["nodes"]}
        self.certs = os.path.join(self.dir, "certs")
        os.makedirs(self.certs, exist_ok=True)
        subprocess.run(["cp", self.topo["ca"], os.path.join(self.certs, "ca.crt")], check=True)
        return self

    def down(self):
        if os.path.exists(os.path.join(self.dir, "topology.json")):
            self.run("sandbox", "down", "--dir", self.dir, check=False, timeout=120)

    def states(self):
        """`fogport nodes`: id -> state (the last column)."""
        out = self.run("nodes").stdout.splitlines()[1:]
        return {l.split()[0]: l.split()[-1] for l in out if l.strip()}

    def serve(self, nid):
        """Start node nid's `fogport serve` again, in its network namespace
        (as `sandbox up` does: the network namespace only)."""
        n = self.nodes[nid]
        inside = ["nsenter", f"--net=/run/netns/{n['netns']}"] if n.get("netns") else []
        log = open(self.log_path(nid), "ab")
        p = subprocess.Popen([*inside, self.fogport, "serve", "--config", n["config"]],
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        n["pid"] = p.pid
        # `sandbox down` stops the nodes of topology.json: this one now
        with open(os.path.join(self.dir, "topology.json"), "w") as f:
            json.dump(self.topo, f, indent=1)
        return p


# ------------------------------------------------------------------ failover

def answers(address):
    c = http.client.HTTPConnection(address, PORT, timeout=0.5)
    try:
        c.request("GET", "/")
        r = c.getresponse()
        return r.status == 200 and b"web_service" in r.read()
    except OSError:
        return False
    finally:
        c.close()


def wait(pred, timeout, interval):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return time.time()
        time.sleep(interval)
    return None


def crash(sb, nid):
    """The fog's host fails: its serve and the service's container die."""
    os.kill(sb.pid(nid), 9)
    subprocess.run(["runc", "--root", sb.runtime_root(nid), "kill", "web", "KILL"],
                   capture_output=True)


def cmd_failover(a):
    sb = Sandbox(a.fogport, os.path.join(a.work, "failover"), 2, True)
    trials, procs = [], []
    try:
        sb.up()
        sb.push(a.layout, agentbench.IMAGE)
        sb.run("service", "create", "web", "--image", agentbench.IMAGE, "--node", "fog-1",
               "--port", PORT, "--always-on", "--stop-grace", 0, *HTTPD)
        addr = {nid: sb.nodes[nid]["address"] for nid in ("fog-1", "fog-2")}
        if not wait(lambda: answers(addr["fog-1"]), 90, 0.1):
            raise RuntimeError("web never answered on fog-1:\n" + sb.log("fog-1")[-3000:])
        holder = "fog-1"
        for t in range(a.trials):
            other = "fog-2" if holder == "fog-1" else "fog-1"
            t0 = time.time()
            crash(sb, holder)
            t_dead = wait(lambda: sb.states().get(holder) == "dead", 30, 0.1)
            t_ans = wait(lambda: answers(addr[other]), 40, 0.02)
            if t_dead is None or t_ans is None:
                raise RuntimeError(f"trial {t}: dead={t_dead} answers={t_ans}\n"
                                   + sb.log("cloud")[-2000:] + sb.log(other)[-2000:])
            rec = {"trial": t, "from": holder, "to": other, "dead": t_dead - t0,
                   "serving": t_ans - t0}
            trials.append(rec)
            say(f"trial {t}: {holder} dead after {rec['dead']:.2f}s, web answers on {other} "
                f"after {rec['serving']:.2f}s")
            procs.append(sb.serve(holder))  # the failed fog comes back
            if not wait(lambda: sb.states().get(holder) == "up", 30, 0.2):
                raise RuntimeError(f"{holder} did not come back:\n" + sb.log(holder)[-2000:])
            # its agent removes what is left of web there before the next kill
            time.sleep(3)
            holder = other
    finally:
        sb.down()
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    with open(a.out, "w") as f:
        json.dump({"failover": trials}, f, indent=1)


# ------------------------------------------------------------------ heartbeat

class SimNodes:
    """Joined simulated nodes: id -> Basic credential header."""

    def __init__(self, sb, work):
        self.sb, self.creds = sb, {}
        cloud = sb.nodes["cloud"]
        self.data = os.path.join(cloud["data"], "data")
        self.host = cloud["registry"].split("://", 1)[1]
        self.ctx = ssl.create_default_context(cafile=sb.topo["ca"])
        key, self.csr = os.path.join(work, "sim.key"), os.path.join(work, "sim.csr")
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=sim",
                        "-keyout", key, "-out", self.csr], check=True, capture_output=True)
        with open(self.csr) as f:
            self.csr = f.read()

    def conn(self):
        h, _, p = self.host.rpartition(":")
        return http.client.HTTPSConnection(h, int(p), context=self.ctx, timeout=10)

    def join(self, n):
        """Join simulated nodes sim-0 .. sim-(n-1) (those not joined yet)."""
        c = self.conn()
        for i in range(len(self.creds), n):
            nid = f"sim-{i}"
            tok = self.sb.run("node", "token", "create", "--role", "fog", "--id", nid,
                              "--data", self.data).stdout.strip()
            c.request("POST", "/api/v1/join",
                      json.dumps({"token": tok, "id": nid, "csr": self.csr}),
                      {"Content-Type": "application/json"})
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                raise RuntimeError(f"join {nid}: HTTP {r.status} {body[:200]!r}")
            secret = json.loads(body)["secret"]
            self.creds[nid] = "Basic " + base64.b64encode(f"{nid}:{secret}".encode()).decode()
        c.close()


def load(sim, n, t_start, seconds, workers, total, out):
    """Heartbeats of n simulated nodes, 1/s each, evenly spread, for seconds
    from t_start, by workers (of total, over every process): each worker a
    thread with its own kept-alive connection and every total-th node. Puts
    (latencies, failures) on the queue out."""
    ids = [f"sim-{i}" for i in range(n)]
    stop = t_start + seconds
    lock, lat, fails = threading.Lock(), [], [0]

    def worker(k):
        c = sim.conn()
        mine, my_lat, my_fails = ids[k::total], [], 0
        for rnd in range(seconds):
            for j, nid in enumerate(mine):
                due = t_start + rnd + (j * total + k) / n
                now = time.time()
                if due > now:
                    time.sleep(due - now)
                if time.time() >= stop:
                    break
                body = json.dumps({"url": f"https://{nid}.invalid:5000", "parent": "",
                                   "capacity": 1 << 34, "used": 1 << 30,
                                   "labels": "zone=sim", "memory": 1 << 31, "instances": []})
                t0 = time.time()
                try:
                    c.request("POST", "/api/v1/heartbeat", body,
                              {"Content-Type": "application/json",
                               "Authorization": sim.creds[nid]})
                    r = c.getresponse()
                    r.read()
                    if r.status != 204:
                        my_fails += 1
                except (OSError, http.client.HTTPException):
                    my_fails += 1
                    c.close()
                    c = sim.conn()
                my_lat.append(time.time() - t0)
        c.close()
        with lock:
            lat.extend(my_lat)
            fails[0] += my_fails

    ts = [threading.Thread(target=worker, args=(k,)) for k in workers]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put((lat, fails[0]))


def run_load(sim, n, seconds, procs, threads):
    """load() in procs forked processes of threads threads each (one
    Python process cannot send 1000 requests a second on time: the GIL);
    returns (latencies, failures) and starts at once."""
    q = multiprocessing.Queue()
    t_start = time.time() + 0.5
    ps = [multiprocessing.Process(target=load, args=(sim, n, t_start, seconds,
                                                     range(p * threads, (p + 1) * threads),
                                                     procs * threads, q))
          for p in range(procs)]
    for p in ps:
        p.start()
    return ps, q


def cmd_heartbeat(a):
    sb = Sandbox(a.fogport, os.path.join(a.work, "heartbeat"), 1, False)
    steps = [int(s) for s in a.steps.split(",")]
    results = []
    try:
        sb.up()
        sim = SimNodes(sb, a.work)
        pid = sb.pid("cloud")
        for n in steps:
            t0 = time.time()
            sim.join(n)
            say(f"{n} nodes joined ({time.time() - t0:.1f}s)")
            procs = max(1, min(8, n // 100))
            threads = max(1, min(8, n // 50))
            ps, q = run_load(sim, n, a.warmup + a.window, procs, threads)
            time.sleep(0.5 + a.warmup)
            me = os.getpid()
            c0, g0, w0 = cpu_seconds(pid), cpu_seconds(me), time.time()
            time.sleep(a.window)
            c1, g1, w1 = cpu_seconds(pid), cpu_seconds(me), time.time()
            lat, fails = [], 0
            for _ in ps:
                got = q.get()
                lat += got[0]
                fails += got[1]
            for p in ps:
                p.join()
            lat.sort()
            rec = {"nodes": n, "cpu": (c1 - c0) / (w1 - w0), "gen_cpu": (g1 - g0) / (w1 - w0),
                   "rate": len(lat) / (a.warmup + a.window), "fails": fails,
                   "p50_ms": 1000 * lat[len(lat) // 2] if lat else None,
                   "p99_ms": 1000 * lat[int(len(lat) * 0.99)] if lat else None,
                   "procs": procs, "threads": threads}
            results.append(rec)
            say(f"{n} nodes: cloud CPU {100 * rec['cpu']:.1f}% of a core, "
                f"{rec['rate']:.0f} heartbeats/s, p50 {rec['p50_ms']:.2f} ms, "
                f"p99 {rec['p99_ms']:.2f} ms, {rec['fails']} failed")
    finally:
        sb.down()
    with open(a.out, "w") as f:
        json.dump({"heartbeat": results}, f, indent=1)


# ------------------------------------------------------------------ report

def cmd_table(a):
    doc = {}
    for path in a.files:
        with open(path) as f:
            doc.update(json.load(f))
    out = []
    fo = doc.get("failover")
    if fo:
        dead = [t["dead"] for t in fo]
        serving = [t["serving"] for t in fo]
        after = [t["serving"] - t["dead"] for t in fo]
        out += [f"Failure detection and hand-over ({len(fo)} trials; times from the kill -9):",
                "", "| | median | max |", "|---|---|---|",
                f"| node `dead` in `fogport nodes` | {statistics.median(dead):.2f} s | "
                f"{max(dead):.2f} s |",
                f"| service answers on the other fog | {statistics.median(serving):.2f} s | "
                f"{max(serving):.2f} s |",
                f"| ... after `dead` was shown | {statistics.median(after):.2f} s | "
                f"{max(after):.2f} s |", ""]
    hb = doc.get("heartbeat")
    if hb:
        out += ["Heartbeat capacity (simulated nodes, 1 heartbeat/s each; the cloud's CPU "
                "over the measuring window):", "",
                "| nodes | heartbeats/s sent | cloud CPU (% of one core) | CPU per heartbeat |"
                " p50 | p99 | failed | load generator CPU |",
                "|---|---|---|---|---|---|---|---|"]
        for r in hb:
            per = 1e6 * r["cpu"] / r["rate"] if r["rate"] else 0
            out.append(f"| {r['nodes']} | {r['rate']:.0f} | {100 * r['cpu']:.1f} % | "
                       f"{per:.0f} µs | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | "
                       f"{r['fails']} | {100 * r['gen_cpu']:.0f} % |")
        # a step counts when the generator delivered its rate (a busy
        # machine may not let it) without failures
        ok = [r["nodes"] for r in hb
              if r["cpu"] < 0.5 and r["fails"] == 0 and r["rate"] >= 0.95 * r["nodes"]]
        out += ["", f"Largest N delivered in full at < 50 % of one core: "
                f"{max(ok) if ok else 'none'}"
                f"{' (the largest step run)' if ok and max(ok) == hb[-1]['nodes'] else ''}.", ""]
    print("\n".join(out))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("failover")
    f.add_argument("--fogport", required=True)
    f.add_argument("--layout", required=True)
    f.add_argument("--work", required=True)
    f.add_argument("--trials", type=int, default=10)
    f.add_argument("--out", required=True)
    h = sub.add_parser("heartbeat")
    h.add_argument("--fogport", required=True)
    h.add_argument("--work", required=True)
    h.add_argument("--steps", default="50,100,200,500,1000")
    h.add_argument("--warmup", type=int, default=3)
    h.add_argument("--window", type=int, default=10)
    h.add_argument("--out", required=True)
    t = sub.add_parser("table")
    t.add_argument("files", nargs="+")
    a = p.parse_args()
    {"failover": cmd_failover, "heartbeat": cmd_heartbeat, "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    main()
