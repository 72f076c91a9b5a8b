"""Slow clients against the production entry point (deploy/serve: nginx in front of gunicorn):
connections trickling a request body a byte at a time never hold the app's threads.

Starts Debian's nginx and gunicorn with the shipped model. Skipped where nginx is not installed,
unless DERMALENS_REQUIRE_NGINX is set (CI sets it, so there it fails instead).
"""

import os
import re
import shutil
import subprocess  # nosec B404 - starts this project's own script
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from dermalens.config import PROJECT_ROOT
from tools import benchmark
from tools.hostile_uploads import start_tricklers

pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]

TRICKLERS = 8  # twice gunicorn's threads


@pytest.fixture
def production_server(tmp_path):
    """deploy/serve on a free port; yields its base URL."""
    if shutil.which("nginx") is None:
        if os.environ.get("DERMALENS_REQUIRE_NGINX"):
            pytest.fail("nginx is not installed (apt-get install nginx)")
        pytest.skip("nginx is not installed")
    port = benchmark.free_port()
    env = {**os.environ, "PORT": str(port), "PYTHON": sys.executable, "DERMALENS_ENV": "development",
           "DERMALENS_INSTANCE_PATH": str(tmp_path)}
    # (The default temporary folder: under root, nginx's workers must be able to reach it.)
    runtime_folders = set(Path(tempfile.gettempdir()).glob("dermalens-serve.*"))
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen([str(PROJECT_ROOT / "deploy" / "serve")], env=env, stdout=log,  # nosec B603
                              stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"deploy/serve did not start: {(tmp_path / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert set(Path(tempfile.gettempdir()).glob("dermalens-serve.*")) <= runtime_folders, \
        "deploy/serve left its runtime folder behind"


def test_trickling_clients_do_not_block_the_app(production_server):
    stop = start_tricklers(int(production_server.rsplit(":", 1)[1]), TRICKLERS)
    try:
        time.sleep(2)  # every trickler connected and sending
        for _ in range(4):
            # Would time out if the tricklers held gunicorn's four threads.
            assert requests.get(f"{production_server}/api/health", timeout=10).status_code == 200
            assert requests.get(f"{production_server}/login", timeout=10).status_code == 200
    finally:
        stop()


def test_the_app_sees_the_real_client_address_through_nginx(production_server, tmp_path):
    # ProxyFix counts nginx as one more hop: the audit (and the rate limits) see the client that
    # connected to nginx, never an address the client wrote into X-Forwarded-For itself.
    browser = requests.Session()
    form = browser.get(f"{production_server}/login", timeout=10).text
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
    response = browser.post(f"{production_server}/login", timeout=10,
                            data={"username": "x", "password": "y", "csrf_token": csrf},
                            headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 401
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{tmp_path / 'dermalens.sqlite'}")
    with engine.connect() as connection:
        addresses = connection.execute(text(
            "SELECT remote_address FROM audit_events WHERE action = 'sign_in_failed'")).scalars().all()
    assert addresses == ["127.0.0.1"]
