"""Access control with real clients, through the shipped nginx and gunicorn: skopeo, podman, oras and
containerd log in, push and pull with both schemes; a Renovate-style client follows the Bearer
challenge by hand with curl; an external token issuer's tokens count only when its key is configured."""
from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import pytest
from oras.client import OrasClient

from tests.support.e2e_clients import Containerd, Podman
from tests.support.e2e_deploy import DeployStack
from tests.support.e2e_oci import OciLayout, random_bytes
from tests.support.e2e_skopeo import Skopeo
from tests.support.auth_helpers import GROUPS, PASSWORDS, RULES, write_htpasswd
from tests.support.external_issuer import ISSUER, ExternalIssuer

pytestmark = pytest.mark.e2e


def toml_value(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def auth_config(**values) -> str:
    return "[auth]\n" + "".join(f"{key} = {toml_value(value)}\n" for key, value in values.items())


def start_stack(workdir, scheme: str, **extra) -> DeployStack:
    write_htpasswd(workdir / "htpasswd")
    config = auth_config(scheme=scheme, htpasswd=str(workdir / "htpasswd"), rules=RULES, groups=GROUPS,
                         catalog=["admin"], audit_log=str(workdir / "audit.log"), **extra)
    (workdir / "stack").mkdir()
    return DeployStack(workdir / "stack", extra_config=config).start()


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("layout")
    oci = OciLayout(root)
    image = oci.add_image(layers=[{"bin/tool": random_bytes(300_000, seed=7)}])
    oci.tag(image["descriptor"], "v1")
    return root


@pytest.fixture(scope="module", params=["basic", "token"])
def stack(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(f"auth-{request.param}")
    stack = start_stack(workdir, request.param)
    stack.scheme, stack.workdir = request.param, workdir
    yield stack
    stack.stop()


def audit(stack) -> list[dict]:
    return [json.loads(line) for line in (stack.workdir / "audit.log").read_text().splitlines()]


def test_skopeo_login_push_pull(stack, layout, tmp_path):
    skopeo = Skopeo(tmp_path / "skopeo", stack)
    authfile = str(tmp_path / "auth.json")
    bad = skopeo.run("login", "--tls-verify=false", "--authfile", authfile, "-u", "alice", "-p", "wrong",
                     stack.host, check=False)
    assert bad.returncode != 0 and "401" in bad.stderr + bad.stdout
    skopeo.run("login", "--tls-verify=false", "--authfile", authfile, "-u", "alice", "-p", "alice-pw", stack.host)
    skopeo.run("copy", "--dest-tls-verify=false", "--authfile", authfile, f"oci:{layout}:v1",
               f"docker://{stack.host}/public/skopeo:v1")
    skopeo.run("copy", "--dest-tls-verify=false", "--authfile", authfile, f"oci:{layout}:v1",
               f"docker://{stack.host}/team/skopeo:v1")
    # Anonymous: public/** may be pulled, team/** may not.
    skopeo.run("copy", "--src-tls-verify=false", f"docker://{stack.host}/public/skopeo:v1", f"oci:{tmp_path}/out:v1")
    denied = skopeo.run("inspect", "--tls-verify=false", f"docker://{stack.host}/team/skopeo:v1", check=False)
    assert denied.returncode != 0 and re.search(r"authentication required|unauthorized", denied.stderr, re.I)
    pulled = skopeo.json("inspect", "--tls-verify=false", "--authfile", authfile,
                         f"docker://{stack.host}/team/skopeo:v1")
    assert pulled["Name"] == f"{stack.host}/team/skopeo"
    writes = [line for line in audit(stack) if line["event"] == "write" and line["repository"] == "team/skopeo"]
    assert writes and {line["user"] for line in writes} == {"alice"}
    assert all(line["client"] == "127.0.0.1" for line in writes)


def test_podman_login_push_pull_and_a_robot_limited_to_one_repository(stack, layout, tmp_path):
    skopeo = Skopeo(tmp_path / "skopeo", stack)
    skopeo.run("copy", "--dest-tls-verify=false", "--dest-creds", "alice:alice-pw", f"oci:{layout}:v1",
               f"docker://{stack.host}/public/podman:v1")
    podman = Podman(tmp_path / "podman")
    try:
        podman_round_trip(podman, stack)
    finally:
        podman.close()


def podman_round_trip(podman: Podman, stack) -> None:
    podman.remote("pull", f"{stack.host}/public/podman:v1")  # anonymous
    login = podman.login(stack.host, "robot", "wrong", check=False)
    assert login.returncode != 0
    podman.login(stack.host, "robot", PASSWORDS["robot"])
    podman.run("tag", f"{stack.host}/public/podman:v1", f"{stack.host}/ci/app:podman", f"{stack.host}/ci/other:v1")
    podman.remote("push", f"{stack.host}/ci/app:podman")
    refused = podman.remote("push", f"{stack.host}/ci/other:v1", check=False)
    assert refused.returncode != 0 and "403" in refused.stderr, refused.stderr
    podman.run("rmi", f"{stack.host}/ci/app:podman")
    podman.remote("pull", f"{stack.host}/ci/app:podman")
    denied = [line for line in audit(stack) if line["event"] == "denied" and line["repository"] == "ci/other"]
    assert denied and denied[-1]["user"] == "robot" and denied[-1]["status"] == 403


def oras_client(stack, user: str | None) -> OrasClient:
    client = OrasClient(hostname=stack.host, insecure=True, auth_backend=stack.scheme)
    if user:
        client.auth.set_basic_auth(user, PASSWORDS[user])
    return client


def test_oras_with_credentials(stack, tmp_path):
    payload = tmp_path / "notes.txt"
    payload.write_bytes(b"release notes\n")
    resp = oras_client(stack, "alice").push(target=f"{stack.host}/team/oras:v1", files=[str(payload)],
                                            disable_path_validation=True, quiet=True)
    assert resp.status_code == 201
    files = oras_client(stack, "alice").pull(target=f"{stack.host}/team/oras:v1", outdir=str(tmp_path / "out"))
    assert [Path(f).read_bytes() for f in files] == [b"release notes\n"]
    with pytest.raises(Exception, match="401|403|Unauthorized|denied|Forbidden"):
        oras_client(stack, "robot").push(target=f"{stack.host}/team/oras:v2", files=[str(payload)],
                                         disable_path_validation=True, quiet=True)


def test_containerd_with_credentials(stack, layout, tmp_path):
    Skopeo(tmp_path / "skopeo", stack).run(
        "copy", "--dest-tls-verify=false", "--dest-creds", "alice:alice-pw", f"oci:{layout}:v1",
        f"docker://{stack.host}/team/ctr:v1")
    ctd = Containerd(tmp_path / "containerd")
    try:
        ref = f"{stack.host}/team/ctr:v1"
        refused = ctd.run("images", "pull", "--plain-http", ref, check=False)
        assert refused.returncode != 0
        wrong = ctd.run("images", "pull", "--plain-http", "--user", "alice:wrong", ref, check=False)
        assert wrong.returncode != 0 and "401" in wrong.stderr
        ctd.run("images", "pull", "--plain-http", "--user", "alice:alice-pw", ref)
        ctd.run("images", "tag", ref, f"{stack.host}/ci/app:ctr")
        ctd.run("images", "push", "--plain-http", "--user", "robot:robot-pw", f"{stack.host}/ci/app:ctr")
        ctd.run("images", "tag", ref, f"{stack.host}/team/ctr:robot")
        refused = ctd.run("images", "push", "--plain-http", "--user", "robot:robot-pw",
                          f"{stack.host}/team/ctr:robot", check=False)
        assert refused.returncode != 0 and "403" in refused.stderr
        if stack.scheme == "basic":  # hosts.toml holds no credentials in containerd 1.6, but a static header
            hosts = tmp_path / "hosts" / stack.host
            hosts.mkdir(parents=True)
            header = base64.b64encode(b"alice:alice-pw").decode()
            (hosts / "hosts.toml").write_text(
                f'server = "http://{stack.host}"\n[host."http://{stack.host}"]\n  capabilities = ["pull", "resolve"]\n'
                f'  [host."http://{stack.host}".header]\n    Authorization = "Basic {header}"\n')
            ctd.run("content", "fetch", "--hosts-dir", str(tmp_path / "hosts"), ref)
    finally:
        ctd.stop()


def curl(*args: str) -> tuple[int, dict, bytes]:
    """curl -si; returns (status, lower-case headers, body)."""
    out = subprocess.run(["curl", "-si", "--max-time", "30", *args], capture_output=True, timeout=60).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def follow_bearer(url: str, user: str | None, stack) -> tuple[int, bytes, str]:
    """What Renovate-style clients do by hand: request, read the challenge, fetch a token, retry."""
    status, headers, _ = curl(url)
    assert status == 401, (status, headers)
    challenge = dict(re.findall(r'(\w+)="([^"]*)"', headers["www-authenticate"]))
    assert headers["www-authenticate"].startswith("Bearer ") and challenge["realm"] == f"{stack.url}/auth/token"
    auth = ["-u", f"{user}:{PASSWORDS[user]}"] if user else []
    status, _, body = curl(*auth, "-G", challenge["realm"], "--data-urlencode", f"service={challenge['service']}",
                           "--data-urlencode", f"scope={challenge['scope']}")
    assert status == 200, body
    token = json.loads(body)["token"]
    status, _, body = curl("-H", f"Authorization: Bearer {token}", url)
    return status, body, challenge["scope"]


def test_curl_follows_the_bearer_challenge(stack, layout, tmp_path):
    if stack.scheme != "token":
        status, headers, _ = curl(f"{stack.url}/v2/team/skopeo/tags/list")
        assert status == 401 and headers["www-authenticate"].startswith('Basic realm="registry-ext"')
        status, _, body = curl("-u", "alice:alice-pw", f"{stack.url}/v2/")
        assert (status, body) == (200, b"{}")
        return
    Skopeo(tmp_path / "skopeo", stack).run(
        "copy", "--dest-tls-verify=false", "--dest-creds", "alice:alice-pw", f"oci:{layout}:v1",
        f"docker://{stack.host}/team/curl:v1")
    status, body, scope = follow_bearer(f"{stack.url}/v2/team/curl/tags/list", "alice", stack)
    assert (status, json.loads(body), scope) == (200, {"name": "team/curl", "tags": ["v1"]},
                                                 "repository:team/curl:pull")
    status, body, _ = follow_bearer(f"{stack.url}/v2/team/curl/tags/list", "robot", stack)
    assert status == 403 and json.loads(body)["errors"][0]["code"] == "DENIED"
    status, headers, body = curl("-I", "-H", "Authorization: Bearer not.a.token",
                                 f"{stack.url}/v2/team/curl/manifests/v1")
    assert status == 401 and body == b"" and 'error="invalid_token"' in headers["www-authenticate"]


def test_external_issuer_through_nginx(tmp_path_factory, layout, tmp_path):
    issuer = ExternalIssuer("registry-ext")
    issuer.users["extuser"] = "ext-pw"
    issuer.grants["extuser"] = {"ext/app": ["pull", "push"]}
    server = issuer.serve()
    workdir = tmp_path_factory.mktemp("auth-external")
    (workdir / "ext.pem").write_bytes(issuer.public_pem())
    stack = start_stack(workdir, "token", token_issuer=False,
                        token_realm=f"http://127.0.0.1:{server.server_port}/token",
                        trusted_issuers=[{"issuer": ISSUER, "public_key": str(workdir / "ext.pem")}])
    try:
        assert curl(f"{stack.url}/auth/token")[0] == 404  # this registry issues none
        skopeo = Skopeo(tmp_path / "skopeo", stack)
        skopeo.run("copy", "--dest-tls-verify=false", "--dest-creds", "extuser:ext-pw", f"oci:{layout}:v1",
                   f"docker://{stack.host}/ext/app:v1")
        refused = skopeo.run("copy", "--dest-tls-verify=false", "--dest-creds", "extuser:ext-pw",
                             f"oci:{layout}:v1", f"docker://{stack.host}/ext/other:v1", check=False)
        assert refused.returncode != 0
        good = issuer.sign(access=[{"type": "repository", "name": "ext/app", "actions": ["pull"]}])
        status, _, body = curl("-H", f"Authorization: Bearer {good}", f"{stack.url}/v2/ext/app/tags/list")
        assert (status, json.loads(body)["tags"]) == (200, ["v1"])
        stranger = ExternalIssuer("registry-ext", issuer="unconfigured-issuer.test")
        forged = stranger.sign(access=[{"type": "repository", "name": "ext/app", "actions": ["pull"]}])
        same_name = ExternalIssuer("registry-ext").sign(access=[{"type": "repository", "name": "ext/app",
                                                                 "actions": ["pull"]}])
        for token in (forged, same_name):  # another issuer; our issuer's name with another key
            status, headers, _ = curl("-H", f"Authorization: Bearer {token}", f"{stack.url}/v2/ext/app/tags/list")
            assert status == 401 and 'error="invalid_token"' in headers["www-authenticate"]
    finally:
        stack.stop()
        server.shutdown()
