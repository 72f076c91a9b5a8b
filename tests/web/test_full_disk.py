"""A full or read-only disk: health says so, and every failing request says what is wrong."""

import errno
import sqlite3

import pytest
from sqlalchemy.exc import OperationalError

from dermalens import storage
from dermalens.extensions import db
from tests.helpers import ON_POSTGRESQL, Auth, row_count, stored_files, upload
from tests.images import benign_jpeg


def full_disk_error(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def sqlite_error(statement: str, message: str):
    """A stand-in for a session method that fails as SQLite does with `message`."""
    def fail(*args, **kwargs):
        raise OperationalError(statement, {}, sqlite3.OperationalError(message))
    return fail


@pytest.mark.parametrize("which", ["uploads", pytest.param("database", marks=pytest.mark.skipif(
    ON_POSTGRESQL, reason="a PostgreSQL server's disk is not the app's to probe"))])
def test_health_reports_a_disk_that_cannot_be_written(app, client, monkeypatch, which):
    uploads = app.config["UPLOAD_FOLDER"]
    real = storage.writable

    def probe(folder, *args):
        is_uploads = str(folder) == uploads
        return (False, None) if is_uploads == (which == "uploads") else real(folder, *args)
    monkeypatch.setattr(storage, "writable", probe)
    response = client.get("/api/health")
    assert response.status_code == 503 and response.json["status"] == "degraded"
    key = "storage_writable" if which == "uploads" else "database_writable"
    assert response.json[key] is False
    assert any("cannot be written" in problem for problem in response.json["problems"])


def test_health_probe_leaves_no_file(app, client):
    assert client.get("/api/health").status_code == 200
    assert stored_files(app) == []


def test_an_upload_onto_a_full_disk_says_so_and_stores_nothing(app, logged_in, monkeypatch):
    monkeypatch.setattr(storage.os, "fsync", full_disk_error)
    response = upload(logged_in, benign_jpeg())
    assert response.status_code == 503 and b"disk is full" in response.data
    assert row_count(app) == 0 and stored_files(app) == []


def test_a_sign_in_with_a_full_database_says_so(app, client, monkeypatch):
    Auth(client).register()
    Auth(client).logout()
    with app.app_context():
        monkeypatch.setattr(db.session, "commit", sqlite_error("INSERT", "database or disk is full"))
        response = Auth(client).login()
        monkeypatch.undo()
    assert response.status_code == 503 and b"disk is full or read-only" in response.data


def test_other_database_errors_stay_plain_500s(app, client, monkeypatch):
    with app.app_context():
        monkeypatch.setattr(db.session, "scalar", sqlite_error("SELECT", "no such table: users"))
        response = Auth(client).login()
        monkeypatch.undo()
    assert response.status_code == 500 and b"disk" not in response.data
