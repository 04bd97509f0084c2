"""Shared fixtures for the end-to-end tests.

Every test talks to a real `fogport serve` process started on a free loopback
port with its own data directory. FOGPORT_BIN selects the binary (the
sanitizer build under `make check`; build/fogport otherwise)."""
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FOGPORT = os.environ.get("FOGPORT_BIN", os.path.join(ROOT, "build", "fogport"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=15.0, verify=True):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            return requests.get(url, timeout=1, verify=verify)
        except requests.RequestException as e:  # not up yet
            last = e
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer: {last}")


class Registry:
    """A running `fogport serve`. `url` is http://127.0.0.1:PORT,
    `host` is 127.0.0.1:PORT (for skopeo/ctr references)."""

    def __init__(self, data_dir, extra_args=(), config=None, log_path=None):
        self.data_dir = str(data_dir)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.extra_args = list(extra_args)
        self.config = config
        self.log_path = log_path or os.path.join(self.data_dir + ".log")
        self.proc = None

    def argv(self):
        if self.config:
            return [FOGPORT, "serve", "--config", str(self.config)] + self.extra_args
        return [FOGPORT, "serve", "--listen", self.host, "--data", self.data_dir] + self.extra_args

    def start(self, wait=True):
        log = open(self.log_path, "ab")
        env = dict(os.environ)
        # leaks are checked by the unit tests; the server is killed with -9 in places
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=log, env=env)
        log.close()
        if wait:
            wait_http(self.url + "/v2/")
        return self

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def restart(self):
        self.stop()
        return self.start()

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def run(self, *args, check=True, **kw):
        """Run a `fogport` subcommand (e.g. "fsck", "--data", dir)."""
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        return subprocess.run([FOGPORT, *args], capture_output=True, text=True, check=check,
                              env=env, **kw)


@pytest.fixture
def registry(tmp_path):
    """A fresh registry with an empty data directory; stopped after the test.
    A non-zero exit (crash, sanitizer report) fails the test."""
    r = Registry(tmp_path / "data").start()
    yield r
    if r.proc is not None:
        alive = r.proc.poll() is None
        rc = r.stop()
        assert alive, f"fogport serve died during the test:\n{r.log()[-4000:]}"
        assert rc == 0, f"fogport serve exited with {rc}:\n{r.log()[-4000:]}"


@pytest.fixture
def make_registry(tmp_path):
    """Factory for tests that need custom args, configs or several registries."""
    made = []

    def make(name="data", extra_args=(), config=None, start=True):
        r = Registry(tmp_path / name, extra_args=extra_args, config=config)
        if start:
            r.start()
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


def have(tool):
    return shutil.which(tool) is not None
