"""[proxy] configuration and request routing (pure: nothing is dialled)."""
from __future__ import annotations

import pytest

from registry_ext.config import ConfigError, ProxySettings, load_settings
from registry_ext.errors import RegistryError
from registry_ext.proxy.routing import Router

HUB = {"hosts": ["docker.io", "registry-1.docker.io"], "urls": ["https://registry-1.docker.io"],
       "library_prefix": True}
QUAY = {"hosts": ["quay.io"], "urls": ["https://quay.io", "https://quay-mirror.example:8443"],
        "repositories": ["team/**"]}


def proxy_settings(**proxy) -> ProxySettings:
    return load_settings(data={"redis": {"url": "redis://127.0.0.1:1"}, "proxy": proxy}, environ={}).proxy


def error_of(**proxy) -> str:
    with pytest.raises(ConfigError) as caught:
        proxy_settings(**proxy)
    return str(caught.value)


def test_a_valid_proxy_section_loads(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\nignored\n")
    table = dict(QUAY, username="robot", password_file=str(secret), realm="https://quay.io/v2/auth",
                 manifest_ttl=60, timeout=5, max_retries=1, retry_delay=0.1, concurrency=4, allow_push=True,
                 tls_verify=False)
    settings = proxy_settings(upstreams={"hub": HUB, "quay": table}, default_upstream="hub",
                              local_names=["mine/**"])
    router = Router(settings)
    assert router.upstreams["quay"].password == "s3cret" and router.upstreams["quay"].verify is False
    assert router.upstreams["quay"].urls == ("https://quay.io", "https://quay-mirror.example:8443")


@pytest.mark.parametrize("table, message", [
    (dict(HUB, mirror=True), "proxy.upstreams.hub: unknown key mirror"),
    (dict(HUB, hosts=["docker.io:443"]), "proxy.upstreams.hub: hosts: 'docker.io:443' is not a host name"),
    (dict(HUB, hosts=[]), "proxy.upstreams.hub: hosts: at least one registry host name"),
    (dict(HUB, urls=["ftp://x"]), "proxy.upstreams.hub: urls: 'ftp://x' must be http(s)://host[:port]"),
    (dict(HUB, urls=["https://u:p@x"]), "proxy.upstreams.hub: urls: 'https://u:p@x' must be"),
    (dict(HUB, urls=["https://x/v2"]), "proxy.upstreams.hub: urls: 'https://x/v2' must be"),
    (dict(HUB, timeout=0), "proxy.upstreams.hub: timeout: must be in (0, 600] seconds"),
    (dict(HUB, concurrency=0), "proxy.upstreams.hub: concurrency: must be 1-1024"),
    (dict(HUB, manifest_ttl=True), "proxy.upstreams.hub: manifest_ttl: wrong type bool"),
    (dict(HUB, password="x"), "proxy.upstreams.hub: password: needs a username"),
    (dict(HUB, username="u", password="x", password_file="/x"),
     "proxy.upstreams.hub: password and password_file: set one"),
    (dict(HUB, realm="auth.docker.io"), "proxy.upstreams.hub: realm: an http:// or https:// URL"),
    (dict(HUB, repositories=["[a]"]), "proxy.upstreams.hub: repositories:"),
])
def test_bad_upstream_tables_are_refused_with_the_key(table, message):
    assert error_of(upstreams={"hub": table}).startswith(message)


def test_section_level_mistakes():
    assert error_of(upstreams={"hub": HUB}, default_upstream="quay") == (
        "proxy.default_upstream: must be empty or the name of one of proxy.upstreams")
    assert error_of(upstreams={"hub": HUB, "hub2": HUB}) == (
        "proxy.upstreams.hub2.hosts: docker.io is already a host of hub")
    assert error_of(upstreams={"Hub": HUB}).startswith("proxy.upstreams.Hub: names are lowercase")
    assert error_of(local_names=[""]) == "proxy.local_names: a list of non-empty globs"


@pytest.fixture
def router() -> Router:
    return Router(proxy_settings(upstreams={"hub": HUB, "quay": QUAY}, local_names=["mine/**"]))


def test_ns_routes_to_the_upstream_naming_that_host(router):
    route = router.route("ubuntu", "docker.io", "mirror.local:5000")
    assert (route.upstream.name, route.upstream_repo, route.local_repo, route.namespace) == (
        "hub", "library/ubuntu", "hub/library/ubuntu", "docker.io")
    route = router.route("team/app", "quay.io", "mirror.local")
    assert (route.upstream.name, route.local_repo) == ("quay", "quay/team/app")


def test_a_host_path_prefix_routes_like_ns(router):
    route = router.route("registry-1.docker.io/library/ubuntu", None, "mirror.local")
    assert (route.upstream.name, route.upstream_repo, route.namespace) == (
        "hub", "library/ubuntu", "registry-1.docker.io")
    assert router.route("docker.io", None, "mirror.local") is None  # a host alone is a local name
    assert router.route("example.com/app", None, "mirror.local") is None  # not a configured host


def test_local_names_own_host_and_cache_namespaces_stay_local(router):
    assert router.route("mine/app", "docker.io", "m") is None
    assert router.route("hub/library/ubuntu", None, "m") is None
    assert router.route("app", "mirror.local", "mirror.local:5000") is None
    assert router.route("app", None, "m") is None  # no default upstream


def test_the_default_upstream_takes_unrouted_names():
    router = Router(proxy_settings(upstreams={"hub": HUB}, default_upstream="hub", local_names=["mine/**"]))
    assert router.route("ubuntu", None, "m").local_repo == "hub/library/ubuntu"
    assert router.route("mine/app", None, "m") is None


@pytest.mark.parametrize("ns", ["docker.io:443", "https://docker.io", "user@docker.io", "docker io", "docker.io/x",
                                "", "DOCKER.IO", "docker.io?", "..", "-a.io"])
def test_a_malformed_ns_is_400_name_invalid(router, ns):
    with pytest.raises(RegistryError) as caught:
        router.route("app", ns, "m")
    assert (caught.value.status, caught.value.code.name) == (400, "NAME_INVALID")
    assert "ns must be a registry host name" in caught.value.message


def test_an_ns_of_no_upstream_is_404_name_unknown(router):
    with pytest.raises(RegistryError) as caught:
        router.route("app", "ghcr.io", "m")
    assert (caught.value.status, caught.value.code.name) == (404, "NAME_UNKNOWN")
    assert caught.value.message == "ns ghcr.io is not an upstream of this mirror; it is not contacted"


def test_repositories_rules_deny(router):
    with pytest.raises(RegistryError) as caught:
        router.route("other/app", "quay.io", "m")
    assert (caught.value.status, caught.value.code.name) == (403, "DENIED")


def test_writes_through_a_route_or_into_a_cache_namespace_are_denied(router):
    for name, route in (("ubuntu", router.route("ubuntu", "docker.io", "m")), ("hub/library/x", None)):
        with pytest.raises(RegistryError) as caught:
            router.refuse_write(name, route)
        assert (caught.value.status, caught.value.code.name) == (403, "DENIED")
    router.refuse_write("mine/app", None)  # local names are writable
    allowed = Router(proxy_settings(upstreams={"quay": dict(QUAY, allow_push=True)}))
    allowed.refuse_write("quay/team/app", None)
