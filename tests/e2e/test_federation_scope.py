"""Federation keeps repositories apart (issue 4): a blob a fog is fetching
for one repository is not handed to a request for another repository that
does not hold it. The fog's fetch for secret/app is held in flight (the
cloud is stopped before it can answer) while a request for public/app asks
for the same digest; once the cloud answers, secret/app gets the blob and
public/app gets BLOB_UNKNOWN, as the cloud itself answers for public/app."""
import signal
import threading
import time

from fedhelp import Sandbox, gz_layer, push_blob, push_image, sha256


def test_inflight_fetch_is_not_shared_across_repositories(tmp_path):
    sb = Sandbox(tmp_path / "sb", fogs=1, edges=0).up()
    try:
        cloud, fog = sb.cloud, sb["fog-1"]
        secret = gz_layer(300_000)
        digest = push_blob(sb.session(cloud, "secret/app", "pull,push"), cloud, "secret/app",
                           secret)
        push_image(sb.session(cloud, "public/app", "pull,push"), cloud, "public/app", "1",
                   [gz_layer(1000)])
        assert sb.session(cloud, "public/app").get(
            f"{cloud.url}/v2/public/app/blobs/{digest}", timeout=10).status_code == 404
        # tokens first: the fog verifies them offline while the cloud is stopped
        s_secret, s_public = sb.session(fog, "secret/app"), sb.session(fog, "public/app")
        answers = {}

        def get(name, s, repo):
            r = s.get(f"{fog.url}/v2/{repo}/blobs/{digest}", timeout=60)
            answers[name] = (r.status_code, r.content)

        cloud.send(signal.SIGSTOP)
        try:
            t1 = threading.Thread(target=get, args=("secret", s_secret, "secret/app"))
            t1.start()
            time.sleep(1.0)  # the fog's fetch for secret/app waits on the cloud
            t2 = threading.Thread(target=get, args=("public", s_public, "public/app"))
            t2.start()
            time.sleep(1.0)
        finally:
            cloud.send(signal.SIGCONT)
        t1.join(60)
        t2.join(60)
        assert answers["secret"] == (200, secret), answers["secret"][0]
        status, body = answers["public"]
        assert status == 404 and b"BLOB_UNKNOWN" in body, (status, body[:200])
        assert sha256(answers["secret"][1]) == digest
    finally:
        sb.down()


def test_fog_fetches_auth_data_for_a_login_it_does_not_know(tmp_path):
    """A user added at the cloud is known to a fog only after the fog fetches
    the cloud's auth data. fog-1 fetches it on its own only every 5 minutes
    here; a login it refuses makes it fetch at once, so the new user's next
    try, a few seconds later, gets a token from the fog."""
    import os
    import requests
    import subprocess
    from conftest import FOGPORT
    sb = Sandbox(tmp_path / "sb", fogs=1, edges=0).up()
    try:
        fog = sb["fog-1"]
        fog.stop()
        fog.set_config("node", revocation_interval="300s")
        fog.start()
        time.sleep(2)  # past the fetch at start
        subprocess.run([FOGPORT, "user", "add", "newcomer", "--file",
                        os.path.join(sb.dir, "htpasswd"), "--password-stdin"],
                       input="a long new password\n", text=True, check=True, timeout=30)

        def token_status():
            return requests.get(fog.url + "/auth/token", params={"service": fog.id},
                                auth=("newcomer", "a long new password"), verify=sb.ca,
                                timeout=10).status_code
        assert token_status() == 401  # the fog does not know the user yet
        deadline = time.time() + 8
        while token_status() != 200:
            assert time.time() < deadline, fog.log()[-3000:]
            time.sleep(0.5)
    finally:
        sb.down()
