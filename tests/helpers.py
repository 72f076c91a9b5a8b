"""Helpers the tests share: building an app, signing in, uploading, counting rows and files.

The pytest fixtures built on them are in conftest.py.
"""

import io
import os
import re
from pathlib import Path

from pypdf import PdfReader

from dermalens import create_app
from dermalens.extensions import db
from dermalens.records import Analysis, User
from tests.fakes import FakeClassifier

PASSWORD = "correct horse battery staple"
# A handful of HAM10000 images and their labels (tests/fixtures/README.md).
FIXTURES = Path(__file__).parent / "fixtures"

# Tests talk plain HTTP to the app like a local install; production settings are tested explicitly.
os.environ["DERMALENS_ENV"] = "development"


def make_app(tmp_path, **overrides):
    """An app with a temporary database and upload folder and the fake classifier; pass
    CLASSIFIER=None to load the real model named by MODEL_CARD."""
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


def stored_files(app) -> list:
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


def pdf_text(data: bytes) -> str:
    """The text of every page of a PDF, pages joined by newlines."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
