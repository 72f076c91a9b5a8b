"""Fixtures: an app with a temporary database and upload folder, clients, and signed-in users.

Most tests use `FakeClassifier` (no TensorFlow). Tests marked `tensorflow` load real networks.
"""

import io
import os
import re

import pytest

from dermalens import create_app
from dermalens.extensions import db
from dermalens.records import Analysis, User
from tests.fakes import FakeClassifier
from tests.images import benign_jpeg

PASSWORD = "correct horse battery staple"

# Tests talk plain HTTP to the app like a local install; production settings are tested explicitly.
os.environ["DERMALENS_ENV"] = "development"


def make_app(tmp_path, **overrides):
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.sqlite'}",
        "UPLOAD_FOLDER": str(tmp_path / "uploads"),
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "CLASSIFIER": FakeClassifier(),
    }
    config.update(overrides)
    if config["CLASSIFIER"] is None:  # load the real model named by MODEL_CARD
        del config["CLASSIFIER"]
    return create_app(config, instance_path=str(tmp_path / "instance"))


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class Auth:
    """Register / sign in / sign out through the real forms."""

    def __init__(self, client):
        self.client = client

    def register(self, username="alice", password=PASSWORD):
        return self.client.post("/register", data={"username": username, "password": password,
                                                   "confirm": password})

    def login(self, username="alice", password=PASSWORD):
        return self.client.post("/login", data={"username": username, "password": password})

    def logout(self):
        return self.client.post("/logout")


@pytest.fixture
def auth(client):
    return Auth(client)


@pytest.fixture
def logged_in(client, auth):
    """A client signed in as a freshly registered user "alice"."""
    response = auth.register()
    assert response.status_code == 302
    return client


def upload(client, image: bytes | None = None, filename="lesion.jpg", **fields):
    """POST a new analysis as the web form does; returns the response."""
    data = dict(fields)
    if image is not None:
        data["image"] = (io.BytesIO(image), filename)
    return client.post("/analyses", data=data, content_type="multipart/form-data")


def analysis_id_from(response) -> str:
    match = re.search(r"/analyses/([A-Za-z0-9_-]{20,})$", response.headers["Location"])
    assert match, response.headers.get("Location")
    return match.group(1)


@pytest.fixture
def analysis_id(logged_in):
    """Public id of one analysis owned by the signed-in user "alice" (the fake says nevus)."""
    response = upload(logged_in, benign_jpeg(), patient_ref="PT-001", age="54", sex="female",
                      site="back", note="itchy")
    assert response.status_code == 303
    return analysis_id_from(response)


def stored_files(app) -> list:
    from pathlib import Path

    folder = Path(app.config["UPLOAD_FOLDER"])
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def row_count(app) -> int:
    with app.app_context():
        return db.session.query(Analysis).count()


def user_count(app) -> int:
    with app.app_context():
        return db.session.query(User).count()


def token_for(app, username: str, name: str = "test") -> str:
    """Issue an API token for an existing user, as the account page would."""
    from dermalens import tokens

    with app.app_context():
        user = db.session.query(User).filter_by(username=username).one()
        return tokens.issue_token(db.session, user, name)[1]
