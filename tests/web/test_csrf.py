"""CSRF protection, tested with CSRF switched on."""

import re

import pytest

from tests.helpers import PASSWORD, make_app, row_count, upload, user_count
from tests.images import lesion_jpeg


@pytest.fixture
def csrf_client(tmp_path):
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    return app, app.test_client()


def token_from(client, url):
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get(url).get_data(as_text=True)).group(1)


def test_register_without_token_is_refused(csrf_client):
    app, client = csrf_client
    response = client.post("/register", data={"username": "alice", "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code in (400, 200) and user_count(app) == 0


def test_forms_work_with_their_token_and_fail_without(csrf_client):
    app, client = csrf_client
    token = token_from(client, "/register")
    response = client.post("/register", data={"username": "alice", "password": PASSWORD,
                                              "confirm": PASSWORD, "csrf_token": token})
    assert response.status_code == 302

    assert upload(client, lesion_jpeg()).status_code == 400
    assert row_count(app) == 0
    token = token_from(client, "/analyses/new")
    assert upload(client, lesion_jpeg(), csrf_token=token).status_code == 303
    assert row_count(app) == 1

    assert client.post("/logout").status_code == 400
    assert client.get("/history").status_code == 200  # still signed in
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
