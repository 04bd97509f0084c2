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
