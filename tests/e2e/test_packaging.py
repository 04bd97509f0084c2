"""Packaging: `make install`/`uninstall`, help for every command, the manual
page, bash completion, the example configurations (`serve --check`) and the
systemd units (`systemd-analyze verify`)."""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import FOGPORT, ROOT, Registry, wait_http

RELEASE = os.path.join(ROOT, "build", "fogport")
EXAMPLES = os.path.join(ROOT, "examples")


def run(*args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 600)
    return subprocess.run(list(args), **kw)


def make(*args):
    # under `make e2e` the parent's jobserver is not ours
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    r = run("make", "-s", "-j2", *args, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr
    return r


def files_under(root):
    out = set()
    for d, _, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def commands():
    """Every command and sub-command `fogport help --commands` lists."""
    r = run(FOGPORT, "help", "--commands")
    assert r.returncode == 0, r.stderr
    return [line.split() for line in r.stdout.splitlines() if line.strip()]


# -- make install / uninstall -------------------------------------------------

def test_install_puts_every_file_and_uninstall_removes_exactly_them(tmp_path):
    dest = tmp_path / "dest"
    make("install", f"DESTDIR={dest}", "PREFIX=/usr")
    examples = sorted(os.listdir(EXAMPLES))
    want = {"usr/bin/fogport", "usr/share/man/man1/fogport.1",
            "usr/share/man/man5/fogport.conf.5",
            "usr/share/bash-completion/completions/fogport",
            "usr/lib/systemd/system/fogport.service",
            "usr/lib/systemd/system/fogport-registry.service"}
    want |= {f"usr/share/doc/fogport/examples/{e}" for e in examples}
    assert files_under(dest) == want
    assert {"cloud.conf", "fog.conf", "edge.conf"} <= set(examples)
    # the release binary, runnable; nothing installed into /etc
    assert os.access(dest / "usr/bin/fogport", os.X_OK)
    r = run(str(dest / "usr/bin/fogport"), "version")
    assert r.returncode == 0 and r.stdout.startswith("fogport ")
    for unit in ("fogport.service", "fogport-registry.service"):
        text = (dest / "usr/lib/systemd/system" / unit).read_text()
        assert "ExecStart=/usr/bin/fogport serve --config /etc/fogport/fogport.conf\n" in text
        assert not re.search(r"@[A-Z]+@", text), "a placeholder was left in " + unit
    man = (dest / "usr/share/man/man1/fogport.1").read_text()
    assert "/usr/share/doc/fogport/examples" in man and not re.search(r"@[A-Z]+@", man)

    # a file of someone else's in the same tree stays
    (dest / "usr/bin/other").write_text("x")
    make("uninstall", f"DESTDIR={dest}", "PREFIX=/usr")
    assert files_under(dest) == {"usr/bin/other"}


def test_install_follows_prefix_and_unit_dir(tmp_path):
    dest = tmp_path / "dest"
    make("install", f"DESTDIR={dest}", "SYSTEMDUNITDIR=/lib/systemd/system")
    got = files_under(dest)
    assert "usr/local/bin/fogport" in got
    assert "lib/systemd/system/fogport.service" in got
    assert not any(f.startswith("usr/local/lib/systemd") for f in got)
    unit = (dest / "lib/systemd/system/fogport.service").read_text()
    assert "ExecStart=/usr/local/bin/fogport serve" in unit
    make("uninstall", f"DESTDIR={dest}", "SYSTEMDUNITDIR=/lib/systemd/system")
    assert files_under(dest) == set()


# -- help ----------------------------------------------------------------------

def test_help_lists_every_command_with_a_summary():
    top = [c[0] for c in commands() if len(c) == 1]
    assert {"serve", "service", "sandbox", "recall", "user", "node"} <= set(top)
    for args in (["help"], ["--help"]):
        r = run(FOGPORT, *args)
        assert r.returncode == 0
        for name in top:
            assert re.search(rf"^  {re.escape(name)} +\S", r.stdout, re.M), name
    assert "shim" not in top and "__complete" not in top


def test_every_command_and_subcommand_answers_help_with_an_example():
    cmds = commands()
    assert ["service", "create"] in cmds and ["node", "token", "create"] in cmds
    for words in cmds:
        r = run(FOGPORT, *words, "--help")
        name = " ".join(words)
        assert r.returncode == 0, name
        # "user add|passwd NAME" is the usage of "user passwd"
        usage = " ".join(rf"(?:\S*\|)?{re.escape(w)}(?:\|\S*)?" for w in words)
        assert re.search(rf"^usage: fogport {usage}( |$)", r.stdout, re.M), r.stdout
        ex = r.stdout.split("\nexamples:\n")
        assert len(ex) == 2, f"{name}: no examples section"
        assert re.search(rf"fogport {re.escape(name)}( |$)", ex[1], re.M), \
            f"{name}: no example runs it"
    # a sub-command's help shows its own usage, not its siblings'
    r = run(FOGPORT, "service", "create", "--help")
    assert "fogport service delete" not in r.stdout and "--image REF" in r.stdout
    # -h too, and after options
    r = run(FOGPORT, "gc", "-h")
    assert r.returncode == 0 and r.stdout.startswith("usage: fogport gc")
    r = run(FOGPORT, "gc", "--data", "/nonexistent", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: fogport gc")


def test_help_is_not_taken_from_an_option_argument(tmp_path):
    # "-h" as the argument of --cmd is the service's, not a request for help
    r = run(FOGPORT, "service", "create", "web", "--image", "x:1", "--role", "fog",
            "--cmd", "-h", env=dict(os.environ, FOGPORT_CONFIG=str(tmp_path / "none.json")))
    assert "usage:" not in r.stdout and r.returncode != 0
    assert "context" in r.stderr or "login" in r.stderr, r.stderr


def test_unknown_command_is_a_usage_error():
    r = run(FOGPORT, "frobnicate")
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr


# -- manual page ----------------------------------------------------------------

def test_man_page_renders_and_covers_every_command(tmp_path):
    if not shutil.which("groff"):
        pytest.skip("groff is not installed (scripts/install-deps installs groff-base)")
    dest = tmp_path / "dest"
    make("install", f"DESTDIR={dest}", "PREFIX=/usr")
    page = dest / "usr/share/man/man1/fogport.1"
    r = run("groff", "-man", "-Tutf8", "-ww", "-z", str(page))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = run("man", "-l", str(page), env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    text = r.stdout
    for section in ("SYNOPSIS", "COMMANDS", "CONFIGURATION", "FILES", "EXIT STATUS", "EXAMPLES"):
        assert re.search(rf"^{section}$", text, re.M), section
    for words in commands():
        if len(words) == 1:
            assert re.search(rf"^   {words[0]}$", text, re.M), words[0]
        # every usage line of --help is in the page
        assert f"fogport {' '.join(words)}" in text, words


def test_configuration_man_page_has_every_key(tmp_path):
    if not shutil.which("groff"):
        pytest.skip("groff is not installed (scripts/install-deps installs groff-base)")
    dest = tmp_path / "dest"
    make("install", f"DESTDIR={dest}", "PREFIX=/usr")
    page = dest / "usr/share/man/man5/fogport.conf.5"
    r = run("groff", "-man", "-Tutf8", "-ww", "-z", str(page))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = run("man", "-l", str(page), env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    keys = documented_keys()
    assert len(keys) > 50
    for section, key in keys:
        # "[tls]" heading, then the key as an item of it
        part = r.stdout.split(f"   [{section}]\n", 1)
        assert len(part) == 2, section
        assert re.search(rf"^       (\w+, )*{key}\b", part[1], re.M), (section, key)
    assert "/usr/share/doc/fogport/examples" in r.stdout


# -- bash completion --------------------------------------------------------------

def complete(*words, cwd=None):
    """COMPREPLY for `fogport WORDS...` (the last word the one completed)."""
    script = os.path.join(ROOT, "completion", "fogport.bash")
    cmd = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _fogport; '
           'printf "%s\\n" "${COMPREPLY[@]}"')
    r = run("bash", "-c", cmd, "complete", script, FOGPORT, *words, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return sorted(line for line in r.stdout.splitlines() if line)


def test_completion_of_commands_subcommands_and_options(tmp_path):
    assert complete("se") == ["serve", "service"]
    assert "sandbox" in complete("")
    assert complete("help", "rec") == ["recall"]
    # every sub-command `help --commands` knows, at every level
    cmds = commands()
    for words in cmds:
        subs = sorted({c[len(words)] for c in cmds
                       if len(c) == len(words) + 1 and c[:len(words)] == words})
        if subs:
            assert complete(*words, "") == subs, words
    assert complete("service", "create", "web", "--re") == ["--replicas", "--restart"]
    assert "--check" in complete("serve", "--")
    assert complete("node", "token", "create", "--role", "") == ["edge", "fog"]
    assert complete("service", "create", "x", "--restart", "o") == ["on-failure"]
    assert complete("serve", "--log-level", "") == ["debug", "error", "info", "warn"]
    # paths: files for --config, directories for --data and --dir
    (tmp_path / "a.conf").write_text("")
    (tmp_path / "adir").mkdir()
    assert complete("serve", "--config", "a", cwd=tmp_path) == ["a.conf", "adir"]
    assert complete("serve", "--data", "a", cwd=tmp_path) == ["adir"]
    assert complete("sandbox", "up", "--dir", "a", cwd=tmp_path) == ["adir"]
    # after an option's argument, options again
    assert "--listen" in complete("serve", "--config", "x.conf", "--l")


# -- example configurations ---------------------------------------------------------

def node_files(tmp_path):
    """/etc/fogport and /var/lib/fogport of the examples, in tmp_path, with
    what the cloud's configuration names."""
    etc, data = tmp_path / "etc", tmp_path / "data"
    etc.mkdir()
    r = run(FOGPORT, "ca", "init", "--dir", str(etc / "ca"))
    assert r.returncode == 0, r.stderr
    r = run(FOGPORT, "cert", "issue", "--ca", str(etc / "ca"), "--name", "cloud",
            "--dns", "cloud.example.net", "--ip", "127.0.0.1", "--out", str(etc / "tls"))
    assert r.returncode == 0, r.stderr
    r = run(FOGPORT, "user", "add", "admin", "--file", str(etc / "htpasswd"),
            "--password-stdin", input="a long passphrase\n")
    assert r.returncode == 0, r.stderr
    shutil.copy(os.path.join(EXAMPLES, "policy.example"), etc / "policy")
    shutil.copy(os.path.join(EXAMPLES, "replication.example"), etc / "replication")
    shutil.copy(etc / "ca" / "ca.crt", etc / "ca.crt")
    return etc, data


def example(name, etc, data, tmp_path, uncomment=False):
    text = open(os.path.join(EXAMPLES, name)).read()
    text = text.replace("/etc/fogport", str(etc)).replace("/var/lib/fogport", str(data))
    text = text.replace("/var/log/fogport", str(tmp_path / "log"))
    if uncomment:  # the keys shown at their default are real keys too
        text = re.sub(r"^#(\w+ = )", r"\1", text, flags=re.M)
    path = tmp_path / (("all-" if uncomment else "") + name)
    path.write_text(text)
    return path


@pytest.mark.parametrize("name,role", [("cloud.conf", "cloud"), ("fog.conf", "fog"),
                                       ("edge.conf", "edge")])
def test_examples_pass_check(tmp_path, name, role):
    etc, data = node_files(tmp_path)
    for uncomment in (False, True):
        path = example(name, etc, data, tmp_path, uncomment)
        r = run(FOGPORT, "serve", "--config", str(path), "--check")
        assert r.returncode == 0, r.stderr
        assert f"{path}: configuration OK" in r.stdout
        assert re.search(rf"^node: +\S+ \({role}\)$", r.stdout, re.M), r.stdout
        assert not os.path.exists(data), "--check wrote the data directory"


def documented_keys():
    doc = open(os.path.join(ROOT, "docs", "configuration.md")).read()
    keys = set()
    for section, names in re.findall(r"^\| (\w+) \| ([\w, ]+) \|", doc, re.M):
        if section != "section":
            keys |= {(section, k.strip()) for k in names.split(",")}
    return keys


def test_examples_cover_every_documented_key():
    keys = documented_keys()
    assert ("node", "role") in keys and ("tls", "key") in keys
    shown = set()
    for name in ("cloud.conf", "fog.conf", "edge.conf"):
        section = None
        for line in open(os.path.join(EXAMPLES, name)):
            m = re.match(r"^#?\[(\w+)\]", line) or re.match(r"^# \[(\w+)\]", line)
            if m:
                section = m.group(1)
            m = re.match(r"^#?(\w+) = ", line)
            if m:
                shown.add((section, m.group(1)))
    assert keys - shown == set()


def test_examples_run_a_cloud_a_fog_and_an_edge(tmp_path):
    """The examples as they are, but on this machine: the fog and the edge
    join the cloud and report to its directory. As root, each node runs with
    what fogport-registry.service leaves it: no capability but binding low
    ports, no new privileges."""
    etc, _ = node_files(tmp_path)
    nodes = {name: Registry(tmp_path / f"{name}-data", config=tmp_path / f"{name}.conf")
             for name in ("cloud", "fog", "edge")}
    if os.geteuid() == 0 and shutil.which("setpriv"):
        for node in nodes.values():
            node.argv = (lambda argv: lambda: ["setpriv", "--bounding-set",
                                               "-all,+net_bind_service", "--no-new-privs",
                                               *argv])(node.argv())
    hosts = {"cloud.example.net:5000": nodes["cloud"].port,
             "fog-1.example.net:5000": nodes["fog"].port,
             "edge-1.example.net:5000": nodes["edge"].port}
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0",
               FOGPORT_CONFIG=str(tmp_path / "client.json"))
    ca = str(etc / "ca.crt")

    def configure(name, token=None):
        text = open(os.path.join(EXAMPLES, f"{name}.conf")).read()
        for host, port in hosts.items():
            text = text.replace(host, f"127.0.0.1:{port}")
        text = text.replace("/etc/fogport", str(etc))
        text = text.replace("/var/lib/fogport", str(tmp_path / f"{name}-data"))
        text = re.sub(r"^listen = :5000$", f"listen = 127.0.0.1:{nodes[name].port}", text,
                      flags=re.M)
        text = re.sub(r"^enabled = true$", "enabled = false", text, flags=re.M)  # no agent
        if token:
            text = text.replace("PASTE-THE-JOIN-TOKEN-HERE", token)
        (tmp_path / f"{name}.conf").write_text(text)

    def start(name):
        node = nodes[name].start(wait=False)
        try:
            wait_http(f"https://127.0.0.1:{node.port}/v2/", verify=ca)
        except RuntimeError:
            raise AssertionError(f"{name} did not start:\n{node.log()[-3000:]}")

    try:
        configure("cloud")
        start("cloud")
        for name, role, node_id in (("fog", "fog", "fog-1"), ("edge", "edge", "edge-1")):
            r = run(FOGPORT, "node", "token", "create", "--role", role, "--id", node_id,
                    "--config", str(tmp_path / "cloud.conf"), env=env)
            assert r.returncode == 0, r.stderr
            configure(name, r.stdout.strip())
            start(name)
        r = run(FOGPORT, "login", f"https://127.0.0.1:{nodes['cloud'].port}", "--user", "admin",
                "--password-stdin", "--ca", ca, input="a long passphrase\n", env=env)
        assert r.returncode == 0, r.stderr
        deadline, seen = time.time() + 20, {}
        while time.time() < deadline:
            r = run(FOGPORT, "nodes", "--json", env=env)
            assert r.returncode == 0, r.stderr
            seen = {n["id"]: n for n in json.loads(r.stdout)}
            if all(seen.get(i, {}).get("health") == "healthy" for i in ("fog-1", "edge-1")):
                break
            time.sleep(0.5)
        assert seen.get("fog-1", {}).get("health") == "healthy", seen
        assert seen.get("edge-1", {}).get("health") == "healthy", seen
        assert seen["edge-1"].get("parent") == "fog-1", seen["edge-1"]
        assert seen["edge-1"].get("capacity") == 16 << 30, seen["edge-1"]  # the example's
        assert "plant-3" in json.dumps(seen["fog-1"].get("labels")), seen["fog-1"]
    finally:
        for node in nodes.values():
            node.stop()


def test_check_names_what_is_wrong(tmp_path):
    etc, data = node_files(tmp_path)
    good = example("cloud.conf", etc, data, tmp_path).read_text().splitlines()
    bad = tmp_path / "bad.conf"
    # an unknown key: file and line
    lines = list(good)
    at = lines.index("[server]") + 1
    lines.insert(at, "listne = :5000")
    bad.write_text("\n".join(lines) + "\n")
    r = run(FOGPORT, "serve", "--config", str(bad), "--check")
    assert r.returncode == 1
    assert f"{bad}:{at + 1}: unknown setting [server] listne" in r.stderr
    # a bad role, at its line
    lines = [("role = clod" if line == "role = cloud" else line) for line in good]
    bad.write_text("\n".join(lines) + "\n")
    r = run(FOGPORT, "serve", "--config", str(bad), "--check")
    assert r.returncode == 1
    assert f"{bad}:{good.index('role = cloud') + 1}: [node] role: 'clod'" in r.stderr
    # a file it names that is not there
    os.unlink(etc / "htpasswd")
    r = run(FOGPORT, "serve", "--config", str(example("cloud.conf", etc, data, tmp_path)),
            "--check")
    assert r.returncode == 1 and f"[auth] htpasswd {etc}/htpasswd" in r.stderr
    # a fog that has not joined needs its join token
    fog = example("fog.conf", etc, data, tmp_path)
    fog.write_text(re.sub(r"^join_token = .*$", "", fog.read_text(), flags=re.M))
    r = run(FOGPORT, "serve", "--config", str(fog), "--check")
    assert r.returncode == 1 and "[node] join_token: not joined yet" in r.stderr
    # the agent on a cloud
    cloud = example("cloud.conf", etc, data, tmp_path)
    cloud.write_text(cloud.read_text() + "[agent]\nenabled = true\n")
    (etc / "htpasswd").write_text("")
    r = run(FOGPORT, "serve", "--config", str(cloud), "--check")
    assert r.returncode == 1 and "fog and edge nodes only" in r.stderr
    # the hand-over among fogs on a cloud
    cloud.write_text(example("cloud.conf", etc, data, tmp_path).read_text() +
                     "[control]\netcd = http://10.0.0.11:2379\n")
    r = run(FOGPORT, "serve", "--config", str(cloud), "--check")
    assert r.returncode == 1 and "[control] etcd: for fogs that run services" in r.stderr


# -- systemd units -------------------------------------------------------------------

def test_systemd_units_verify(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (scripts/install-deps installs systemd)")
    # installed where the units' paths exist: verify checks the binary
    prefix, etc = tmp_path / "usr", tmp_path / "etc"
    make("install", f"PREFIX={prefix}", f"SYSCONFDIR={etc}")
    units = [str(prefix / "lib/systemd/system" / u)
             for u in ("fogport.service", "fogport-registry.service")]
    env = dict(os.environ, MANPATH=str(prefix / "share/man"))
    r = run("systemd-analyze", "verify", *units, env=env)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    agent, registry = (open(u).read() for u in units)
    # the agent's services outlive a restart; the registry-only node is sandboxed
    assert "KillMode=process" in agent and not re.search("^ProtectSystem=", agent, re.M)
    assert "ProtectSystem=strict" in registry and "ReadWritePaths=/var/lib/fogport" in registry
    for unit in (agent, registry):
        for line in ("Type=exec", "KillSignal=SIGTERM", "Restart=on-failure",
                     "StateDirectory=fogport", "LimitNOFILE=65536"):
            assert line + "\n" in unit
    r = run("systemd-analyze", "security", "--offline=yes", units[1], env=env)
    m = re.search(r"Overall exposure level for fogport-registry.service: ([\d.]+)", r.stdout)
    assert m and float(m.group(1)) <= 3.0, r.stdout[-500:]
    make("uninstall", f"PREFIX={prefix}", f"SYSCONFDIR={etc}")
