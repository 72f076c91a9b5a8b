"""Browser tests: the app under gunicorn with the shipped model, driven by headless Chromium.

Run with `make e2e` (installs Chromium from Debian when missing, Playwright and axe-core).
Screenshots of every page at desktop (1366x900), tablet and phone (390x844) sizes go to
e2e-screenshots/ (git-ignored).
"""

import os

import pytest

from tests.e2e.helpers import VIEWPORTS
from tools import benchmark

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


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
