"""Fixtures: an app with a temporary database and upload folder, clients, and signed-in users.

Most tests use `FakeClassifier` (no TensorFlow). Tests marked `tensorflow` load real networks.
Shared helpers (make_app, upload, ...) are in tests/helpers.py.
"""

import pytest

from tests.helpers import Auth, analysis_id_from, drop_test_databases, make_app, upload
from tests.images import benign_jpeg


@pytest.fixture(autouse=True)
def _drop_test_databases():
    """Each test's PostgreSQL database (when the suite runs on PostgreSQL) goes with it."""
    yield
    drop_test_databases()


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def auth(client):
    return Auth(client)


@pytest.fixture
def logged_in(client, auth):
    """A client signed in as a freshly registered user "alice"."""
    response = auth.register()
    assert response.status_code == 302
    return client


@pytest.fixture
def analysis_id(logged_in):
    """Public id of one analysis owned by the signed-in user "alice" (the fake says nevus)."""
    response = upload(logged_in, benign_jpeg(), patient_ref="PT-001", age="54", sex="female",
                      site="back", note="itchy")
    assert response.status_code == 303
    return analysis_id_from(response)
