"""The web UI in a real browser: Debian's Chromium driven by Playwright, against `registry-ext serve`
holding a slice of the official-images tag history (tests/support/ui_seed.py), with ``--htpasswd``.

Each page is reached by clicking and keyboard, checked with axe-core (no serious or critical
violation) and saved as a screenshot under tests/artifacts/ui/ (gitignored) for a person to look at.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import bcrypt
import pytest
import requests
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect, sync_playwright

from bench.peer import start_peer
from tests.support.e2e_mirror_seed import CONFIG, LAYER, Pusher, image
from tests.support.e2e_server import RegistryServer
from tests.support.ui_seed import Seeder, history_events

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "ui"
USER, PASSWORD = "alice", "alice-ui-pw"
UPSTREAM_SECRET = "e2e-upstream-secret"
XSS = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'


class UiServer(RegistryServer):
    def __init__(self, workdir: Path, htpasswd: Path, config: Path):
        super().__init__(workdir, workers=2, env={"REGISTRY_EXT_CONFIG": str(config)})
        self.htpasswd = htpasswd

    def command(self) -> list[str]:
        return super().command() + ["--htpasswd", str(self.htpasswd)]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    workdir = tmp_path_factory.mktemp("ui")
    htpasswd = workdir / "htpasswd"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    htpasswd.write_text(f"{USER}:$2y${hashed[4:]}\n")
    peer = start_peer(data_dir=str(workdir / "peer"))  # a mirror-diff remote: docker-registry, one tag
    remote = Pusher(peer.url)
    for blob in (CONFIG, LAYER):
        remote.blob("library/haproxy", blob)
    remote.manifest("library/haproxy", "only-there", image("only-there"))
    config = workdir / "config.toml"
    config.write_text(f'[mirror]\nremotes = {{ peer = {{ url = "{peer.url}", timeout = 20 }} }}\n'
                      # the same docker-registry as a pull-through upstream, with credentials never shown
                      f'[proxy.upstreams.hub]\nhosts = ["docker.io"]\nurls = ["{peer.url}"]\n'
                      f'username = "robot"\npassword = "{UPSTREAM_SECRET}"\n')
    server = UiServer(workdir / "server", htpasswd, config)
    server.start()
    seed = Seeder(server.url, (USER, PASSWORD))
    seed.replay("library/node", history_events("node", 400))
    seed.replay("library/haproxy", history_events("haproxy", 120))
    seed.multi_platform("library/haproxy", "multi")
    latest = seed.image("tools/xss", "v1", labels={"note": XSS}, annotations={"org.example.note": XSS})
    seed.signature("tools/xss", latest, {"org.example.signer": XSS})
    seed.image("tools/xss", None)  # an untagged manifest
    yield server
    server.close()
    peer.stop()


@pytest.fixture(scope="module")
def browser():
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    # a 401/404 answer is logged as "Failed to load resource" (the tests ask for some): not an error here
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == []  # no CSP refusal, no script error on any page


def check(page: Page, name: str) -> None:
    """axe-core finds nothing serious or critical; the page is saved as a screenshot."""
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-top.png"))  # what one sees first, full size
    results = Axe().run(page)
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
           for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == [], bad
    assert page.evaluate("window.pwned") is None


def log_in(page: Page, url: str) -> None:
    page.goto(f"{url}/ui/")
    page.get_by_role("link", name="Sign in").click()
    check(page, "login")
    page.get_by_label("User name").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_text(f"Signed in as {USER}")).to_be_visible()


def test_anonymous_sees_nothing_and_a_wrong_password_is_refused(server, page):
    page.goto(f"{server.url}/ui/")
    expect(page.get_by_text("No repository matches")).to_be_visible()
    assert page.goto(f"{server.url}/ui/repo/library/node").status == 404
    check(page, "not-found")
    page.goto(f"{server.url}/ui/login")
    page.get_by_label("User name").fill(USER)
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")


def test_repository_list_search_and_repository_page(server, page):
    log_in(page, server.url)
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(3)
    check(page, "repositories")
    page.get_by_label(re.compile("Search by prefix or glob")).fill("*/no*")
    page.keyboard.press("Enter")
    expect(rows).to_have_count(1)
    check(page, "repositories-search")
    page.get_by_role("link", name="library/node").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("library/node")
    check(page, "repository-by-time")
    page.get_by_role("link", name="version").click()
    expect(page.locator("strong[aria-current]")).to_have_text("version")
    first_caption = page.locator("table.tags caption").first.inner_text()
    assert first_caption  # families are captioned tables
    check(page, "repository-by-version")
    page.get_by_label("I run the tag").fill("1.0")
    page.get_by_role("button", name="Show newer tags").click()
    newer = page.locator("ul.newer li a")
    assert newer.count() >= 1
    check(page, "repository-newer-than")
    older = page.get_by_role("link", name="Older tags")
    expect(older).to_be_visible()  # 400 events of node leave 76 tags: two pages
    older.click()
    expect(page.locator("table.tags tbody tr").first).to_be_visible()
    check(page, "repository-page-2")


def test_tag_page_timeline_and_keyboard(server, page):
    log_in(page, server.url)
    # a tag of the replayed history that moved: its page shows the move from one digest to another
    moved = _a_moved_tag(server)
    page.goto(f"{server.url}/ui/repo/library/node/_tag/{moved}")
    expect(page.locator("ol.timeline li").filter(has_text="moved").first).to_be_visible()
    check(page, "tag")
    page.keyboard.press("Tab")  # the skip link comes first and takes focus to the content
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    assert page.input_value("#pull-podman") == f"podman pull --tls-verify=false {server.host}/library/node:{moved}"
    page.goto(f"{server.url}/ui/repo/library/haproxy/_tag/multi")
    expect(page.get_by_role("cell", name="linux/arm64")).to_be_visible()
    check(page, "tag-multi-platform")


def test_attacker_controlled_values_stay_text(server, page):
    log_in(page, server.url)
    page.goto(f"{server.url}/ui/repo/tools/xss")
    expect(page.locator("#untagged-h")).to_be_visible()
    check(page, "repository-xss")
    page.get_by_role("link", name="v1", exact=True).click()
    expect(page.locator("table.list td").filter(has_text=XSS)).to_be_visible()  # the signer, as text
    assert XSS.replace('"', '\\"') in page.locator("pre.json").first.inner_text()
    check(page, "tag-xss")
    resp = page.goto(f"{server.url}/ui/repo/tools/xss/_tag/%3Cscript%3Ewindow.pwned%3D3%3C%2Fscript%3E")
    assert resp is not None and resp.status == 404
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    check(page, "tag-name-xss")


def test_mirror_comparison_page(server, page):
    log_in(page, server.url)
    page.get_by_role("link", name="Mirror").click()
    check(page, "mirror")
    page.get_by_label("Repository here").fill("library/haproxy")
    page.get_by_label("Remote", exact=True).select_option("peer")
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("differs")
    expect(page.locator("svg.chart title")).to_contain_text("only on the remote: 1")
    expect(page.get_by_role("cell", name="only-there", exact=True)).to_be_visible()
    check(page, "mirror-diff")


def test_mirror_upstream_pages(server, page):
    digest = requests.get(f"{server.url}/v2/library/haproxy/manifests/only-there?ns=docker.io",
                          auth=(USER, PASSWORD), timeout=30).headers["Docker-Content-Digest"]
    assert digest.startswith("sha256:")
    log_in(page, server.url)
    page.get_by_role("link", name="Mirror").click()
    expect(page.get_by_role("heading", name="Upstreams")).to_be_visible()
    page.get_by_role("link", name="hub", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("hub")
    expect(page.get_by_role("link", name="hub/library/haproxy")).to_be_visible()
    assert UPSTREAM_SECRET not in page.content()
    check(page, "mirror-upstream")
    page.get_by_role("link", name="hub/library/haproxy").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("hub/library/haproxy")


def _a_moved_tag(server) -> str:
    """A node tag whose history holds a move (asked through the tag-history API)."""
    for event in history_events("node", 400):
        if event["event"] == "moved":
            resp = requests.get(f"{server.url}/v2/library/node/_oci/tag-history/{event['tag']}",
                                auth=(USER, PASSWORD), timeout=10)
            if resp.status_code == 200 and len(resp.json()["manifests"]) >= 2:
                return event["tag"]
    raise AssertionError("no moved tag in the replayed history")
