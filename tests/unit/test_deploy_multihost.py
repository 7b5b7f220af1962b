"""deploy/multi-host/: several registry hosts on one bucket and one Redis behind Sentinel.

There is no Docker here, so the example is checked piece by piece with the real tools: its
registry.toml loads with the registry's own settings loader, its nginx.conf passes `nginx -t`
and differs from deploy/nginx.conf only where several hosts on S3 must, its sentinel.conf runs
in a real sentinel that the registry's Redis client follows, and compose.yaml's services, ports
and mounts agree with those three files (read as text; also parsed as YAML when PyYAML is there).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import redis

from registry_ext.config import ConfigError, load_settings
from registry_ext.index import connection
from registry_ext.storage.driver.s3_settings import s3_options
from tests.support.e2e_deploy import render_main
from tests.support.redis_ha import _server, _wait
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
MULTI = ROOT / "deploy" / "multi-host"
HOSTS = ("registry-1", "registry-2")
WAITERS = {"waiter-1": "registry-1", "waiter-2": "registry-2"}
SENTINELS = ("sentinel-1", "sentinel-2", "sentinel-3")
CONFIG_IN_IMAGE = "/etc/registry-ext/registry.toml"


def settings():
    return load_settings(MULTI / "registry.toml", environ={})


def nginx_text() -> str:
    return (MULTI / "nginx.conf").read_text()


def upstreams(text: str) -> dict[str, list[tuple[str, int]]]:
    """``upstream <name> { server host:port; ... }`` -> name -> [(host, port)]."""
    return {name: [(h, int(p)) for h, p in re.findall(r"^\s*server ([\w.-]+):(\d+);", body, re.M)]
            for name, body in re.findall(r"^upstream (\w+) \{(.*?)^\}", text, re.M | re.S)}


def compose_services() -> dict[str, str]:
    """compose.yaml's services as name -> the text of its block (by indentation)."""
    text = (MULTI / "compose.yaml").read_text()
    section = re.search(r"^services:\n(.*?)(?=^\S)", text, re.M | re.S).group(1)
    parts = re.split(r"^  ([a-z0-9-]+):\n", section, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def mounts(block: str) -> dict[str, str]:
    """target -> source of the (uncommented) volume entries of a service block."""
    return {target: source for source, target in
            re.findall(r"^ +- (\.?[\w./-]+):(/[\w./-]+)(?::ro)?$", block, re.M)}


def published(block: str) -> list[str]:
    return re.findall(r'^ +- "(\d+:\d+)"$', block, re.M)


# -- registry.toml -------------------------------------------------------------------------------------

def test_every_host_loads_the_one_configuration():
    s = settings()
    assert s.storage.driver == "s3" and s.storage.root == "/var/lib/registry-ext"
    options = s3_options(s.storage.s3, ConfigError)
    assert (options.bucket, options.endpoint_url, options.path_style) == ("registry-ext", "http://minio:9000", True)
    assert not options.access_key and not options.secret_key  # from the AWS_* environment (compose.yaml)
    assert options.redirect is False  # clients cannot reach minio:9000 in this example
    target = connection.parse(s.redis.url)
    assert target.kind == "sentinel" and target.master == "registry-ext"
    assert target.hosts == tuple((name, 26379) for name in SENTINELS)
    # what S3 refuses at start stays off; gc is off unless its commented block is uncommented
    assert s.server.x_accel_prefix == "" and s.gc.enabled is False
    assert (s.server.host, s.server.port, s.server.trusted_proxies) == ("0.0.0.0", 5000, 1)
    assert s.feed.wait_offload == "/_regext_wait" and s.feed.waiter_listen == "0.0.0.0:5001"


def test_the_commented_auth_block_loads_with_files_shared_by_every_host(tmp_path):
    head, block = (MULTI / "registry.toml").read_text().split("# [auth]\n")
    uncommented = "[auth]\n" + "\n".join(line.removeprefix("# ") for line in block.splitlines()
                                          if not line.startswith("#  "))  # continuation comments
    (tmp_path / "registry.toml").write_text(head + uncommented)
    auth = load_settings(tmp_path / "registry.toml", environ={}).auth
    assert auth.scheme == "token"
    secrets = "/etc/registry-ext/secrets/"
    assert auth.signing_key.startswith(secrets) and auth.htpasswd.startswith(secrets)
    for host in HOSTS:  # the mount that gives every host those same files, ready to uncomment
        assert f"# - ./secrets:{secrets.rstrip('/')}:ro" in compose_services()[host]


def test_the_commented_gc_block_loads_on_s3(tmp_path):
    head, rest = (MULTI / "registry.toml").read_text().split("# [gc]\n")
    block, tail = rest.split("\n\n", 1)
    uncommented = "[gc]\n" + "\n".join(line.removeprefix("# ") for line in block.splitlines())
    (tmp_path / "registry.toml").write_text(head + uncommented + "\n\n" + tail)
    s = load_settings(tmp_path / "registry.toml", environ={})
    assert s.storage.driver == "s3" and s.gc.enabled and s.gc.grace_period_seconds == 86_400


# -- nginx.conf ----------------------------------------------------------------------------------------

def statements(text: str) -> Counter:
    """The directives of an nginx file, comments and spacing dropped, counted."""
    lines = (" ".join(line.split("#", 1)[0].split()) for line in text.splitlines())
    return Counter(line for line in lines if line)


def test_the_site_is_deploy_nginx_conf_with_every_host_and_no_blob_location():
    shipped = statements((ROOT / "deploy" / "nginx.conf").read_text())
    ours = statements(nginx_text())
    assert ours - shipped == Counter([f"server {host}:{port};" for host in HOSTS for port in (5000, 5001)])
    assert shipped - ours == Counter([
        "server 127.0.0.1:5000;", "server 127.0.0.1:5001;",
        # the X-Accel location: nginx cannot read a bucket
        "location /_blobs/ {", "internal;", "alias /var/lib/registry-ext/blobs/;", "sendfile on;",
        "tcp_nopush on;", "max_ranges 1;", "etag off;", "default_type application/octet-stream;",
        "add_header Docker-Content-Digest $upstream_http_docker_content_digest always;",
        "add_header ETag $upstream_http_etag always;",
        "add_header Docker-Distribution-API-Version $upstream_http_docker_distribution_api_version always;",
        "add_header X-Request-ID $registry_request_id always;", 'add_header Last-Modified "" always;', "}",
        # /metrics: per host, not through nginx
        "location = /metrics {", "allow 127.0.0.1;", "allow ::1;", "deny all;", "proxy_pass http://registry_ext;",
        "}"])


def test_nginx_accepts_the_site(tmp_path):
    if shutil.which("nginx") is None:
        pytest.fail("nginx is not installed (apt-get install nginx)")
    text = nginx_text()
    for old, new in [("listen 80;", f"listen 127.0.0.1:{free_port()};"),
                     ("access_log /var/log/nginx/registry-ext.access.log", "access_log logs/access.log")] + [
            (f"server {host}:{port};", f"server 127.0.0.1:{free_port()};") for host in HOSTS for port in (5000, 5001)]:
        assert text.count(old) == 1, f"deploy/multi-host/nginx.conf must contain {old!r} exactly once"
        text = text.replace(old, new)  # nginx resolves upstream names at load: compose's names are not here
    (tmp_path / "logs").mkdir()
    (tmp_path / "registry-ext.conf").write_text(text)
    (tmp_path / "nginx.conf").write_text(render_main())
    out = subprocess.run(["nginx", "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "test is successful" in out.stderr, out.stderr


def test_the_upstreams_are_the_hosts_and_their_waiters():
    s, ups = settings(), upstreams(nginx_text())
    assert ups == {"registry_ext": [(host, s.server.port) for host in HOSTS],
                   "registry_ext_waiter": [(host, int(s.feed.waiter_listen.rsplit(":", 1)[1])) for host in HOSTS]}
    assert f"location {s.feed.wait_offload}/ {{" in nginx_text()


# -- sentinel.conf -------------------------------------------------------------------------------------

def test_the_sentinels_configuration_runs_and_the_registry_follows_it(tmp_path):
    """sentinel.conf in a real sentinel (names and ports made local, the rest as shipped), and the
    registry's client for the shipped redis.url asking it for the primary."""
    primary = free_port()
    procs = [_server(tmp_path / "primary", primary)]
    try:
        text = (MULTI / "sentinel.conf").read_text()
        port = free_port()
        for old, new in (("port 26379\n", f"port {port}\n"), ("dir /data\n", f"dir {tmp_path}\n"),
                         (" redis-primary 6379 ", f" localhost {primary} ")):
            assert text.count(old) == 1, f"sentinel.conf must contain {old!r} exactly once"
            text = text.replace(old, new)
        conf = tmp_path / "sentinel.conf"
        conf.write_text(text + "sentinel announce-ip localhost\n")  # what compose.yaml adds per sentinel
        procs.append(subprocess.Popen([shutil.which("redis-server"), str(conf), "--sentinel"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        sentinel = redis.Redis(port=port, decode_responses=True)
        _wait(lambda: sentinel.ping(), "the sentinel")
        # a name, not an address: announce-hostnames, so a recreated container is still found
        assert sentinel.sentinel_get_master_addr_by_name("registry-ext") == ("localhost", primary)
        shipped = connection.parse(settings().redis.url)
        client = connection.connect(f"redis+sentinel://localhost:{port}/{shipped.master}")
        client.set("regext:probe", "1")
        assert redis.Redis(port=primary).get("regext:probe") == b"1"
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


# -- compose.yaml --------------------------------------------------------------------------------------

def test_compose_runs_each_piece_once_and_publishes_only_nginx():
    services = compose_services()
    assert set(services) == {"minio", "bucket", "redis-primary", "redis-replica", "nginx",
                             *SENTINELS, *HOSTS, *WAITERS}
    assert {name for name, block in services.items() if published(block)} == {"nginx"}
    assert published(services["nginx"]) == ["5000:80"]


def test_compose_gives_every_host_the_same_configuration_and_its_own_root():
    services, s = compose_services(), settings()
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert f"REGISTRY_EXT_CONFIG={CONFIG_IN_IMAGE}" in dockerfile
    assert 'CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py"' in dockerfile  # what the hosts run
    roots = set()
    for name in (*HOSTS, *WAITERS):
        block = services[name]
        assert mounts(block)[CONFIG_IN_IMAGE] == "./registry.toml", name
        assert "image: registry-ext:latest" in block, name
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # boto3's; registry.toml has no keys
            assert re.search(rf"^ +{var}: \$\{{S3_", block, re.M), (name, var)
    for host in HOSTS:
        roots.add(mounts(services[host])[s.storage.root])
    assert roots == {"registry-1-local", "registry-2-local"}  # local temp files: one volume per host
    assert "dockerfile: deploy/Dockerfile" in services["registry-1"]
    for waiter, host in WAITERS.items():  # reached by nginx at <host>:5001
        assert f'network_mode: "service:{host}"' in services[waiter]
        assert 'command: ["registry-ext", "feed-waiter"]' in services[waiter]
    assert mounts(services["nginx"]) == {"/etc/nginx/conf.d/default.conf": "./nginx.conf"}
    for name in upstreams(nginx_text()):
        for host, _port in upstreams(nginx_text())[name]:
            assert host in services


def test_compose_s3_and_redis_are_where_the_configuration_looks():
    services, s = compose_services(), settings()
    options = s3_options(s.storage.s3, ConfigError)
    assert options.endpoint_url.split("//")[1].split(":")[0] in services
    assert f"mc mb --ignore-existing s3/{options.bucket}" in services["bucket"]
    for host, port in connection.parse(s.redis.url).hosts:
        assert host in services and mounts(services[host])["/etc/redis/sentinel.conf"] == "./sentinel.conf"
        assert f"port {port}\n" in (MULTI / "sentinel.conf").read_text()
    monitor = re.search(r"^sentinel monitor (\S+) (\S+) (\d+) (\d+)$", (MULTI / "sentinel.conf").read_text(), re.M)
    assert monitor.group(1) == connection.parse(s.redis.url).master and monitor.group(2) in services
    assert int(monitor.group(4)) == len(SENTINELS) // 2 + 1  # a majority of the sentinels
    assert '"--replicaof", "redis-primary", "6379"' in services["redis-replica"]
    for i, name in enumerate(SENTINELS):
        assert f"SENTINEL_NAME: {name}" in services[name] and f"{name}-data:/data" in services[name]
        assert ("command: &sentinel-start" if i == 0 else "command: *sentinel-start") in services[name]


def test_compose_parses_as_yaml_like_the_text_says():
    import yaml  # the test extra (setup.cfg)
    doc = yaml.safe_load((MULTI / "compose.yaml").read_text())
    services = doc["services"]
    assert list(services) == list(compose_services())
    for name, service in services.items():
        assert {v.rsplit(":ro", 1)[0].split(":", 1)[1]: v.split(":", 1)[0]
                for v in service.get("volumes", [])} == mounts(compose_services()[name]), name
        assert service.get("ports", []) == published(compose_services()[name]), name
    sentinel = services["sentinel-2"]["command"]  # the alias resolved: each sentinel runs the same start
    assert sentinel[:2] == ["sh", "-c"] and "announce-ip $$SENTINEL_NAME" in sentinel[2]
    assert "exec docker-entrypoint.sh redis-server /data/sentinel.conf --sentinel" in sentinel[2]
    assert services["registry-2"]["depends_on"] == services["registry-1"]["depends_on"]
    assert services["registry-1"]["depends_on"]["bucket"] == {"condition": "service_completed_successfully"}
    assert set(doc["volumes"]) == {v.split(":", 1)[0] for s in services.values() for v in s.get("volumes", [])
                                   if not v.startswith(".")}
