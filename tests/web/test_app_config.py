"""Startup refusals and security headers: the app fails early and loudly, never at the first request."""

import os

import pytest

from sqlalchemy import text

from dermalens import ConfigurationError, create_app
from dermalens.extensions import db
from tests.helpers import ON_POSTGRESQL, make_app


def test_production_refuses_to_start_without_a_real_secret_key(tmp_path, monkeypatch):
    monkeypatch.setenv("DERMALENS_ENV", "production")
    for bad in (None, "dev", "short-key"):
        if bad is None:
            monkeypatch.delenv("SECRET_KEY", raising=False)
        else:
            monkeypatch.setenv("SECRET_KEY", bad)
        with pytest.raises(ConfigurationError, match="SECRET_KEY"):
            create_app({"CLASSIFIER": object()}, instance_path=str(tmp_path))


def test_production_uses_secure_cookies(tmp_path, monkeypatch):
    monkeypatch.setenv("DERMALENS_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 48)
    from tests.fakes import FakeClassifier

    app = create_app({"CLASSIFIER": FakeClassifier(),
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'db.sqlite'}"},
                     instance_path=str(tmp_path))
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["SESSION_COOKIE_HTTPONLY"]
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax" and not app.debug


def test_local_install_generates_and_keeps_a_secret_key(tmp_path):
    first = make_app(tmp_path, SECRET_KEY=None)
    second = make_app(tmp_path, SECRET_KEY=None)
    key_file = tmp_path / "instance" / "secret_key"
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == key_file.read_text()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_instance_folder_is_a_clear_startup_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    with pytest.raises(ConfigurationError, match="not writable|Cannot create"):
        make_app(tmp_path, UPLOAD_FOLDER=str(locked / "uploads"))


def test_unwritable_upload_folder_is_a_clear_startup_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigurationError, match="Cannot create"):
        make_app(tmp_path, UPLOAD_FOLDER=str(blocker / "uploads"))


@pytest.mark.skipif(ON_POSTGRESQL, reason="SQLite's connection settings")
def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(app):
    with app.app_context():
        connection = db.session.connection()
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


@pytest.mark.parametrize("url", ["/login", "/analyses/new", "/history", "/no-such-page"])
def test_security_headers_on_pages(logged_in, url):
    headers = logged_in.get(url).headers
    csp = headers["Content-Security-Policy"]
    assert "object-src 'none'" in csp and "base-uri" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"


def test_error_pages_use_the_site_design(logged_in):
    response = logged_in.get("/no-such-page")
    assert response.status_code == 404 and b"Back to DermaLens" in response.data
    assert logged_in.delete("/history").status_code == 405


def test_too_many_form_parts_are_refused(logged_in):
    data = {f"field{i}": "x" for i in range(500)}
    assert logged_in.post("/analyses", data=data, content_type="multipart/form-data").status_code == 413


def test_create_user_command(runner, app):
    result = runner.invoke(args=["create-user", "grace", "--password-stdin"], input="a long password 123\n")
    assert result.exit_code == 0 and "Created user grace" in result.output
    short = runner.invoke(args=["create-user", "henry", "--password-stdin"], input="short\n")
    assert short.exit_code != 0 and "at least 10" in short.output
    client = app.test_client()
    assert client.post("/login", data={"username": "grace", "password": "a long password 123"}).status_code == 302


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "../../etc/passwd", ""])
def test_an_unknown_time_zone_is_a_clear_startup_error(tmp_path, name):
    with pytest.raises(ConfigurationError, match="DERMALENS_TIME_ZONE: Unknown time zone"):
        make_app(tmp_path, TIME_ZONE=name)


def test_every_page_has_a_favicon_and_browsers_asking_for_favicon_ico_get_it(client):
    assert 'rel="icon" href="/static/favicon.svg"' in client.get("/login").get_data(as_text=True)
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml" and b"<svg" in icon.data


@pytest.mark.skipif(not ON_POSTGRESQL, reason="PostgreSQL's connection settings")
def test_postgresql_connections_are_pooled_checked_and_time_limited(app):
    with app.app_context():
        assert db.engine.pool.size() == 5 and db.engine.pool._pre_ping
        with db.engine.connect() as connection:
            assert connection.execute(text("SHOW statement_timeout")).scalar() == "30s"


def test_postgresql_settings_come_from_the_environment(monkeypatch):
    from dermalens.config import database_engine_options

    monkeypatch.setenv("DERMALENS_DB_POOL_SIZE", "12")
    monkeypatch.setenv("DERMALENS_DB_STATEMENT_TIMEOUT_MS", "5000")
    options = database_engine_options("postgresql+psycopg://u@db/dermalens")
    assert options["pool_size"] == 12 and options["pool_pre_ping"] is True
    assert options["connect_args"] == {"options": "-c statement_timeout=5000"}
    assert database_engine_options("sqlite:///x.sqlite") == {}


@pytest.mark.parametrize("given, used", [
    ("postgres://u:p@db.internal:5432/dermalens", "postgresql+psycopg://u:p@db.internal:5432/dermalens"),
    ("postgresql://u@db/dermalens", "postgresql+psycopg://u@db/dermalens"),
    ("postgresql+psycopg://u@db/dermalens", "postgresql+psycopg://u@db/dermalens"),
    ("sqlite:////data/dermalens.sqlite", "sqlite:////data/dermalens.sqlite"),
])
def test_a_managed_databases_url_uses_the_installed_driver(given, used):
    from dermalens.config import database_url

    assert database_url(given) == used
