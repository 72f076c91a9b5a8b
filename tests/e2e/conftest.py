"""Browser tests: the app under gunicorn with the shipped model, driven by headless Chromium.

Run with `make e2e` (installs Chromium from Debian when missing, Playwright and axe-core).
Screenshots of every page at a desktop and a tablet size go to e2e-screenshots/ (git-ignored).
"""

import os
from pathlib import Path

import pytest

from dermalens import benchmark

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "e2e-screenshots"
VIEWPORTS = {"desktop": {"width": 1366, "height": 768}, "tablet": {"width": 820, "height": 1180}}
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="session")
def base_url(tmp_path_factory):
    """Start gunicorn as deployed (shipped model, fresh instance folder) until the model answers."""
    instance = tmp_path_factory.mktemp("instance")
    server, url, _ = benchmark.start_server(instance, benchmark.free_port(), instance / "gunicorn.log")
    yield url
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, base_url):
    context = browser.new_context(viewport=VIEWPORTS["desktop"], base_url=base_url, accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


def check_accessibility(page, name: str) -> None:
    """Run axe-core on the current page; fail on serious or critical violations."""
    page.evaluate(AXE.read_text())
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
               for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not serious, f"{name}: {serious}"


def screenshot(page, name: str) -> None:
    """Save the page at both viewports (full page), then restore the desktop size."""
    SCREENSHOTS.mkdir(exist_ok=True)
    for label, size in VIEWPORTS.items():
        page.set_viewport_size(size)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(VIEWPORTS["desktop"])
