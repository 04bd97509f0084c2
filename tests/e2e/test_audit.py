"""The cloud's audit trail (issue 6, item 6): a sandbox's cloud records the
fog's join, a push (registration), a service's creation and deletion and a
revocation made with the CLI on its data directory; `fogport audit --json`
lists them in order, `fogport audit verify` passes, and fails naming the
entry after a digest in a copy of the log is edited, an entry is removed or
the last one cut off (the signed head); the cloud itself notices a cut tail
at its next append and says so in the log."""
import json
import os
import shutil

import pytest
import requests

from fedhelp import Sandbox, check_log_clean, cli, fogport, gz_layer, push_image


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    s = Sandbox(tmp_path_factory.mktemp("audit"), fogs=1, edges=0).up()
    s.ca_dir = os.path.dirname(s.ca)
    s.log = os.path.join(s.cloud.data_dir, "audit.log")
    s.head = os.path.join(s.cloud.data_dir, "audit.head")
    yield s
    s.down()


def verify(*args):
    return fogport("audit", "verify", *args, check=False)


def copy_log(sb, dst):
    """A copy of the cloud's log and head in dst: (log, head)."""
    os.makedirs(dst, exist_ok=True)
    log, head = os.path.join(dst, "audit.log"), os.path.join(dst, "audit.head")
    shutil.copy(sb.log, log)
    shutil.copy(sb.head, head)
    return log, head


def read_lines(path):
    with open(path, "rb") as f:
        return f.read().splitlines(keepends=True)


def write_lines(path, lines):
    with open(path, "wb") as f:
        f.writelines(lines)


def test_audit_trail(sb, tmp_path):
    # a registration, a deployment and its removal, all as the admin
    s = sb.session(sb.cloud, "audited/app", "pull,push")
    digest, _, _ = push_image(s, sb.cloud, "audited/app", "1.0", [gz_layer(2000)])
    # a fractional CPU share: a real number in the details, as written and hashed
    cli(sb, "service", "create", "x", "--image", "audited/app:1.0", "--node", "fog-1", "--cpus",
        "0.3", "--memory", "64M")
    cli(sb, "service", "delete", "x")
    # the log is for operators: a node's credential is refused
    cred = json.load(open(os.path.join(sb["fog-1"].data_dir, "node", "credential.json")))
    r = requests.get(sb.cloud.url + "/api/v1/audit", auth=(cred["id"], cred["secret"]),
                     verify=sb.ca, timeout=10)
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED", r.text
    # a revocation, offline on the cloud's data directory: the running
    # cloud's head tells the command which key signs
    fogport("node", "revoke", "fog-1", "--data", sb.cloud.data_dir)

    entries = json.loads(cli(sb, "audit", "--json").stdout)
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1)), entries
    kinds = [(e["kind"], e["subject"]) for e in entries]
    assert kinds[0][0] == "policy_loaded", kinds
    order = [("node_joined", "fog-1"), ("image_registered", "audited/app"),
             ("service_created", "x"), ("service_deleted", "x"), ("node_revoked", "fog-1")]
    at = [kinds.index(k) for k in order]
    assert at == sorted(at), kinds
    by = {k: entries[i] for k, i in zip(order, at)}
    joined = by[order[0]]
    assert joined["details"]["role"] == "fog" and joined["details"]["certificate"] is True, joined
    reg = by[order[1]]
    assert reg["actor"] == "user:admin", reg
    assert reg["details"] == {"repository": "audited/app", "digest": digest, "tags": ["1.0"]}, reg
    created = by[order[2]]
    assert created["actor"] == "user:admin", created
    assert created["details"]["digest"] == digest and created["details"]["node"] == "fog-1", created
    assert created["details"]["cpus"] == 0.3, created
    assert by[order[3]]["details"]["digest"] == digest
    assert by[order[4]]["actor"].startswith("local:"), by[order[4]]
    for a, b in zip(entries, entries[1:]):
        assert b["prev"] == a["hash"]
    n = len(entries)

    # the real log verifies, with the cloud's configuration or a given key
    r = verify("--config", sb.cloud.config)
    assert r.returncode == 0, r.stderr
    assert f"{n} entries verify; signed head at entry {n}" in r.stdout, r.stdout
    pub = os.path.join(sb.ca_dir, "token.pub")
    r = verify("--data", sb.cloud.data_dir, "--key", pub)
    assert r.returncode == 0, r.stderr
    # without a trusted key there is nothing to verify with
    assert verify("--data", sb.cloud.data_dir).returncode != 0

    # an edited digest: caught at that entry
    log, head = copy_log(sb, tmp_path / "edited")
    lines = read_lines(log)
    i = at[1]
    hexpart = digest.split(":")[1].encode()
    assert hexpart in lines[i]
    lines[i] = lines[i].replace(hexpart, hexpart[:-1] + (b"0" if hexpart[-1:] != b"0" else b"1"))
    write_lines(log, lines)
    r = verify("--file", log, "--key", pub)
    assert r.returncode == 1, r.stdout
    assert f"entry {i + 1} (line {i + 1})" in r.stderr and "edited" in r.stderr, r.stderr

    # a removed entry: the next one names it
    log, head = copy_log(sb, tmp_path / "removed")
    lines = read_lines(log)
    del lines[at[2]]
    write_lines(log, lines)
    r = verify("--file", log, "--key", pub)
    assert r.returncode == 1
    assert f"entry {at[2] + 1} was removed" in r.stderr, r.stderr

    # the last entry cut off: the chain alone cannot tell, the signed head can
    log, head = copy_log(sb, tmp_path / "cut")
    write_lines(log, read_lines(log)[:-1])
    r = verify("--file", log, "--key", pub, "--no-head")
    assert r.returncode == 0, r.stderr
    r = verify("--file", log, "--key", pub)
    assert r.returncode == 1
    assert f"ends at entry {n - 1} but its signed head is at entry {n}" in r.stderr, r.stderr
    os.unlink(head)
    r = verify("--file", log, "--key", pub)
    assert r.returncode == 1 and "no signed head" in r.stderr, r.stderr

    # the same cut on the cloud's own log: its next append records it, and
    # the log no longer verifies, naming that entry
    write_lines(sb.log, read_lines(sb.log)[:-1])
    cli(sb, "service", "create", "y", "--image", "audited/app:1.0", "--node", "fog-1")
    cli(sb, "service", "delete", "y")
    r = verify("--config", sb.cloud.config)
    assert r.returncode == 1
    assert f"entry {n} (line {n})" in r.stderr and "tampered" in r.stderr, r.stderr
    tampered = [e for e in json.loads(cli(sb, "audit", "--json").stdout)
                if e["kind"] == "audit_tampered"]
    assert tampered and tampered[0]["details"]["head_seq"] == n, tampered

    # paging
    r = requests.get(sb.cloud.url + "/api/v1/audit", params={"after": n, "limit": 1},
                     auth=sb.admin, verify=sb.ca, timeout=10)
    assert r.status_code == 200, r.text
    page = r.json()
    assert [e["seq"] for e in page["entries"]] == [n + 1] and page["more"] is True, page
    check_log_clean(sb)
