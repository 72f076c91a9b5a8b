"""Helpers the tests share: building an app, signing in, uploading, counting rows and files.

The pytest fixtures built on them are in conftest.py.
"""

import io
import itertools
import os
import re
import shutil
import tempfile
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


# A PostgreSQL server for the tests (`.ci/services` starts one), e.g.
# postgresql+psycopg://postgres@/postgres?host=/tmp/dermalens-pg.x. With DERMALENS_TEST_DATABASE
# =postgresql the whole suite runs on it (`.ci/run` runs it on SQLite, then on PostgreSQL); each
# test gets a database of its own, copied from one migrated once.
POSTGRESQL_URL = os.environ.get("DERMALENS_TEST_POSTGRESQL_URL")
ON_POSTGRESQL = os.environ.get("DERMALENS_TEST_DATABASE") == "postgresql"
if ON_POSTGRESQL and not POSTGRESQL_URL:
    raise RuntimeError("DERMALENS_TEST_DATABASE=postgresql needs DERMALENS_TEST_POSTGRESQL_URL "
                       '(eval "$(.ci/services start)")')
_TEMPLATE = {}
_DATABASE_NUMBERS = itertools.count()
CREATED_DATABASES: list[str] = []


def upgrade_database(app) -> None:
    """Bring the app's database to the migrations' head, as `flask --app app db upgrade` does."""
    import flask_migrate

    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()


def fresh_database(tmp_path, postgresql: bool | None = None) -> str:
    """The URL of a fresh database at the migrations' head for one test: SQLite in `tmp_path`, or
    a new database on the PostgreSQL server (`postgresql`, default: as the suite runs)."""
    postgresql = ON_POSTGRESQL if postgresql is None else postgresql
    if postgresql not in _TEMPLATE:
        _TEMPLATE[postgresql] = _migrated_template(postgresql)
    if not postgresql:
        shutil.copy(_TEMPLATE[False].removeprefix("sqlite:///"), tmp_path / "test.sqlite")
        return f"sqlite:///{tmp_path / 'test.sqlite'}"
    name = f"dermalens_test_{os.getpid()}_{next(_DATABASE_NUMBERS)}"
    _postgresql_admin(f"CREATE DATABASE {name} TEMPLATE dermalens_template")
    CREATED_DATABASES.append(name)
    return _with_database(POSTGRESQL_URL, name)


def drop_test_databases() -> None:
    """Drop the PostgreSQL databases the finished test made (their pools may still be open)."""
    while CREATED_DATABASES:
        _postgresql_admin(f"DROP DATABASE IF EXISTS {CREATED_DATABASES.pop()} WITH (FORCE)")


def _migrated_template(postgresql: bool) -> str:
    if postgresql:
        _postgresql_admin("DROP DATABASE IF EXISTS dermalens_template WITH (FORCE)")
        _postgresql_admin("CREATE DATABASE dermalens_template")
        url = _with_database(POSTGRESQL_URL, "dermalens_template")
    else:
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='dermalens-template-')) / 'template.sqlite'}"
    folder = Path(tempfile.mkdtemp(prefix="dermalens-template-app-"))
    upgrade_database(create_app({"TESTING": True, "SECRET_KEY": "x" * 40, "SQLALCHEMY_DATABASE_URI": url,
                                 "UPLOAD_FOLDER": str(folder / "uploads"), "CLASSIFIER": FakeClassifier()},
                                instance_path=str(folder / "instance")))
    return url


def _with_database(url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _postgresql_admin(statement: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(POSTGRESQL_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(statement))
    engine.dispose()


def make_app(tmp_path, **overrides):
    """An app with a fresh migrated database, a temporary upload folder and the fake classifier;
    pass CLASSIFIER=None to load the real model named by MODEL_CARD."""
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "SQLALCHEMY_DATABASE_URI": overrides.pop("SQLALCHEMY_DATABASE_URI", None) or fresh_database(tmp_path),
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
