"""Crash consistency and online garbage collection.

- Concurrent pushes while the server is killed with SIGKILL at random
  moments, several times: afterwards `fogport fsck` is clean and every push
  that got its 201 for the manifest is still there, byte for byte.
- `fogport gc` run while the server serves and a client pulls: unreferenced
  blobs and untagged manifests go, tagged images stay; the default grace
  period keeps what was uploaded just now."""
import hashlib
import os
import random
import threading
import time

import requests

from helpers import (get_blob, get_manifest, push_image, random_config, sha256,
                     upload_blob)

MiB = 1 << 20
WORKERS = 3
ROUNDS = 8
SEED = int(os.environ.get("FOGPORT_CRASH_SEED", time.time_ns() % 1_000_000))


def wait_until(cond, timeout, what, interval=0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def server_up(registry):
    try:
        return requests.get(registry.url + "/v2/", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def pull_verified(registry, repo, ref, session=requests):
    """GET the manifest and every blob it names; returns a list of problems
    (empty when all bytes hash to their digests)."""
    problems = []
    r = get_manifest(registry, repo, ref, session=session)
    if r.status_code != 200:
        return [f"GET manifest {repo}:{ref} -> {r.status_code} {r.text[:200]}"]
    digest = r.headers.get("Docker-Content-Digest")
    if digest != sha256(r.content):
        problems.append(f"{repo}:{ref} Docker-Content-Digest {digest} != {sha256(r.content)}")
    m = r.json()
    for d in [m["config"]["digest"]] + [x["digest"] for x in m["layers"]]:
        h = hashlib.sha256()
        with session.get(f"{registry.url}/v2/{repo}/blobs/{d}", stream=True, timeout=60) as b:
            if b.status_code != 200:
                problems.append(f"GET blob {repo}@{d} -> {b.status_code}")
                continue
            for chunk in b.iter_content(1 << 20):
                h.update(chunk)
        if "sha256:" + h.hexdigest() != d:
            problems.append(f"blob {repo}@{d} has content sha256:{h.hexdigest()}")
    return problems


def fsck(registry):
    r = registry.run("fsck", "--data", registry.data_dir, check=False, timeout=300)
    return r.returncode, r.stdout + r.stderr


class Pusher(threading.Thread):
    """Pushes images of 1-2 random layers of 1-8 MiB in a loop, using the
    three upload styles in turn; records every push that got its 201."""

    MODES = ("monolithic", "single", "chunked")

    def __init__(self, registry, idx, stop, completed, lock, epoch):
        super().__init__(daemon=True)
        self.registry, self.idx, self.stop_ev = registry, idx, stop
        self.completed, self.lock, self.epoch = completed, lock, epoch
        self.rnd = random.Random(SEED * 100 + idx)
        self.attempts = self.failures = 0
        self.unexpected = []  # failures while no kill or restart happened
        self.error = None

    def run(self):
        try:
            self._loop()
        except BaseException as e:  # reported by the test
            self.error = e

    def _loop(self):
        n = 0
        while not self.stop_ev.is_set():
            n += 1
            repo, tag = f"crash/w{self.idx}", f"p{n}"
            layers = [self.rnd.randbytes(self.rnd.randint(1 * MiB, 8 * MiB))
                      for _ in range(self.rnd.randint(1, 2))]
            config = random_config(self.rnd, f"{repo}:{tag}")
            mode = self.MODES[n % len(self.MODES)]
            self.attempts += 1
            epoch = self.epoch[0]
            try:
                with requests.Session() as s:
                    digest, _ = push_image(self.registry, repo, tag, config, layers, mode=mode,
                                           session=s)
            except (requests.RequestException, AssertionError) as e:
                # the server was killed under us (or is restarting): wait for it
                self.failures += 1
                if self.epoch[0] == epoch and epoch % 2 == 0:
                    self.unexpected.append(f"{repo}:{tag} ({mode}): {e}")
                while not self.stop_ev.is_set() and not server_up(self.registry):
                    time.sleep(0.02)
                continue
            with self.lock:
                self.completed.append((repo, tag, digest))


def test_kill9_during_concurrent_pushes(registry):
    stop = threading.Event()
    lock = threading.Lock()
    completed = []
    epoch = [0]  # bumped before each kill and after each restart: odd while down
    pushers = [Pusher(registry, i, stop, completed, lock, epoch) for i in range(WORKERS)]
    for p in pushers:
        p.start()
    rnd = random.Random(SEED)
    t0 = time.time()
    try:
        for rnd_no in range(ROUNDS):
            # let the restarted server make progress, then kill it mid-push
            with lock:
                before = len(completed)
            wait_until(lambda: len(completed) > before, 30,
                       f"a push to complete after restart {rnd_no} (seed {SEED})")
            time.sleep(rnd.uniform(0.05, 0.6))
            epoch[0] += 1
            registry.kill9()
            registry.start()
            epoch[0] += 1
    finally:
        stop.set()
        for p in pushers:
            p.join(timeout=60)
    assert not any(p.is_alive() for p in pushers), "a pusher hung"
    errors = [p.error for p in pushers if p.error]
    assert not errors, errors
    unexpected = [u for p in pushers for u in p.unexpected]
    assert not unexpected, "pushes failed with no kill in between:\n" + "\n".join(unexpected[:10])
    assert time.time() - t0 < 120
    assert sum(p.failures for p in pushers) >= 1, "no kill ever interrupted a push"

    # one last crash with nothing in flight, then check the directory
    registry.kill9()
    registry.start()
    rc, out = fsck(registry)
    assert rc == 0, f"fsck after {ROUNDS + 1} kills (seed {SEED}) -> {rc}:\n{out[-3000:]}"

    print(f"seed {SEED}: {sum(p.attempts for p in pushers)} pushes started, "
          f"{len(completed)} completed, {sum(p.failures for p in pushers)} cut by a kill")
    assert len(completed) >= ROUNDS
    problems = []
    with requests.Session() as s:
        for repo, tag, digest in completed:
            problems += pull_verified(registry, repo, tag, session=s)
            r = get_manifest(registry, repo, digest, session=s)
            if r.status_code != 200 or sha256(r.content) != digest:
                problems.append(f"GET {repo}@{digest} -> {r.status_code}")
    assert not problems, f"{len(problems)} problems in {len(completed)} completed pushes " \
                         f"(seed {SEED}):\n" + "\n".join(problems[:20])

    # and the server still takes pushes
    digest, _ = push_image(registry, "crash/after", "ok", random_config(rnd, "after"),
                           [rnd.randbytes(MiB)], mode="chunked")
    assert pull_verified(registry, "crash/after", "ok") == []


# ---------------------------------------------------------------- gc

def next_second(t):
    """Wait until the wall clock is in a later whole second than t. The
    store records creation times in whole seconds and keeps what is younger
    than the grace period (created >= now - grace), so `--grace 0` can only
    collect what was created in an earlier second than the gc's clock."""
    wait_until(lambda: int(time.time()) > int(t), 2, "the next second", interval=0.01)


def blob_file(registry, digest):
    algo, hexd = digest.split(":", 1)
    return os.path.join(registry.data_dir, "blobs", algo, hexd[:2], hexd)


class Puller(threading.Thread):
    def __init__(self, registry, repo, tag):
        super().__init__(daemon=True)
        self.registry, self.repo, self.tag = registry, repo, tag
        self.stop_ev = threading.Event()
        self.ok = 0
        self.problems = []

    def run(self):
        with requests.Session() as s:
            while not self.stop_ev.is_set() and len(self.problems) < 20:
                try:
                    p = pull_verified(self.registry, self.repo, self.tag, session=s)
                except requests.RequestException as e:
                    p = [f"request failed: {e}"]
                if p:
                    self.problems += p
                else:
                    self.ok += 1


def gc_setup(registry, rnd):
    """A tagged image, blobs nobody references (in two repositories) and an
    image whose only tag was deleted."""
    kept_cfg = random_config(rnd, "keep")
    kept_layers = [rnd.randbytes(2 * MiB), rnd.randbytes(300 * 1024)]
    kept, _ = push_image(registry, "gcapp", "keep", kept_cfg, kept_layers)
    orphans = [("gcapp", upload_blob(registry, "gcapp", rnd.randbytes(MiB))),
               ("gcapp", upload_blob(registry, "gcapp", rnd.randbytes(4096), mode="chunked")),
               ("gcother", upload_blob(registry, "gcother", rnd.randbytes(MiB // 2)))]
    gone_layer = rnd.randbytes(MiB)
    gone_cfg = random_config(rnd, "gone")
    gone, _ = push_image(registry, "gcapp", "gone", gone_cfg, [gone_layer])
    r = requests.delete(f"{registry.url}/v2/gcapp/manifests/gone", timeout=10)
    assert r.status_code == 202, f"DELETE tag gone -> {r.status_code} {r.text}"
    assert get_manifest(registry, "gcapp", "gone").status_code == 404
    # deleting the tag leaves the manifest (untagged) until gc
    assert get_manifest(registry, "gcapp", gone).status_code == 200
    unreferenced = orphans + [("gcapp", sha256(gone_layer)), ("gcapp", sha256(gone_cfg))]
    for _, d in unreferenced:
        assert os.path.exists(blob_file(registry, d)), f"no file for {d} before gc"
    kept_blobs = [sha256(kept_cfg)] + [sha256(b) for b in kept_layers]
    return kept, kept_blobs, gone, unreferenced, time.time()


def test_gc_online_while_pulling(registry):
    rnd = random.Random(SEED + 1)
    kept, kept_blobs, gone, unreferenced, t_setup = gc_setup(registry, rnd)

    puller = Puller(registry, "gcapp", "keep")
    puller.start()
    try:
        wait_until(lambda: puller.ok >= 1 or puller.problems, 30, "a first pull")
        next_second(t_setup)
        r = registry.run("gc", "--data", registry.data_dir, "--grace", "0", check=False,
                         timeout=120)
        assert r.returncode == 0, f"gc -> {r.returncode}\n{r.stdout}\n{r.stderr}"
        after = puller.ok
        wait_until(lambda: puller.ok > after + 1 or puller.problems, 30, "pulls after gc")
    finally:
        puller.stop_ev.set()
        puller.join(timeout=30)
    assert not puller.problems, "pulls failed during gc:\n" + "\n".join(puller.problems[:10])
    assert puller.ok >= 2

    for repo, d in unreferenced:
        b = get_blob(registry, repo, d)
        assert b.status_code == 404, f"unreferenced {repo}@{d} still served ({b.status_code})"
        assert not os.path.exists(blob_file(registry, d)), f"{d} still on disk after gc"
    r = get_manifest(registry, "gcapp", gone)
    assert r.status_code == 404, f"untagged manifest {gone} survived gc ({r.status_code})"

    assert pull_verified(registry, "gcapp", "keep") == []
    assert get_manifest(registry, "gcapp", kept).status_code == 200
    for d in kept_blobs:
        assert os.path.exists(blob_file(registry, d))
    rc, out = fsck(registry)
    assert rc == 0, f"fsck after gc -> {rc}:\n{out[-3000:]}"


def test_gc_default_grace_keeps_fresh_uploads(registry):
    rnd = random.Random(SEED + 2)
    kept, kept_blobs, gone, unreferenced, t_setup = gc_setup(registry, rnd)

    # default grace: everything was uploaded just now, nothing may go
    r = registry.run("gc", "--data", registry.data_dir, check=False, timeout=120)
    assert r.returncode == 0, f"gc -> {r.returncode}\n{r.stdout}\n{r.stderr}"
    for repo, d in unreferenced:
        b = get_blob(registry, repo, d)
        assert b.status_code == 200, f"fresh {repo}@{d} collected under the default grace"
        assert sha256(b.content) == d
        assert os.path.exists(blob_file(registry, d))
    assert get_manifest(registry, "gcapp", gone).status_code == 200

    # a dry run with no grace removes nothing either
    next_second(t_setup)
    r = registry.run("gc", "--data", registry.data_dir, "--grace", "0", "--dry-run",
                     check=False, timeout=120)
    assert r.returncode == 0, f"gc --dry-run -> {r.returncode}\n{r.stdout}\n{r.stderr}"
    for repo, d in unreferenced:
        assert get_blob(registry, repo, d).status_code == 200, f"--dry-run removed {d}"
        assert os.path.exists(blob_file(registry, d))

    # while a real one does (so the checks above were not vacuous)
    r = registry.run("gc", "--data", registry.data_dir, "--grace", "0", check=False,
                     timeout=120)
    assert r.returncode == 0, f"gc -> {r.returncode}\n{r.stdout}\n{r.stderr}"
    for repo, d in unreferenced:
        assert get_blob(registry, repo, d).status_code == 404, f"{d} not collected"
    assert pull_verified(registry, "gcapp", "keep") == []


def test_fsck_reports_corrupt_and_missing_blobs(registry):
    """The clean fsck results above mean something: damage is reported,
    one line per problem, with exit status 1."""
    rnd = random.Random(SEED + 3)
    layers = [rnd.randbytes(MiB), rnd.randbytes(64 * 1024)]
    push_image(registry, "fsckapp", "v1", random_config(rnd, "fsck"), layers)
    rc, out = fsck(registry)
    assert rc == 0, out

    corrupt, missing = sha256(layers[0]), sha256(layers[1])
    with open(blob_file(registry, corrupt), "r+b") as f:  # same size, one byte flipped
        f.seek(MiB // 2)
        b = f.read(1)
        f.seek(MiB // 2)
        f.write(bytes([b[0] ^ 0xFF]))
    os.unlink(blob_file(registry, missing))

    r = registry.run("fsck", "--data", registry.data_dir, check=False, timeout=120)
    assert r.returncode == 1, f"fsck -> {r.returncode}\n{r.stdout}\n{r.stderr}"
    lines = r.stdout.splitlines()
    # one line per problem (a summary line may follow)
    assert len([line for line in lines if corrupt in line]) == 1, r.stdout
    assert len([line for line in lines if missing in line]) == 1, r.stdout
    assert len([line for line in lines if "sha256:" in line]) == 2, r.stdout
