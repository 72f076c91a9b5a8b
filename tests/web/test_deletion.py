"""Deleting an analysis is all or nothing, audited once, and safe against concurrent requests."""

import os
import threading

import pytest

from dermalens import storage
from dermalens.extensions import db
from dermalens.records import AuditEvent
from tests.helpers import row_count, stored_files, token_for, upload, analysis_id_from
from tests.images import benign_jpeg


def deleted_events(app) -> int:
    with app.app_context():
        return db.session.query(AuditEvent).filter_by(action="analysis_deleted").count()


@pytest.fixture
def unwritable_storage(monkeypatch):
    """The upload folder refuses renames and deletions, as a read-only or full volume does."""
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(storage.os, "replace", refuse)


@pytest.mark.parametrize("how", ["web", "api"])
def test_a_delete_that_cannot_remove_the_files_changes_nothing(app, logged_in, analysis_id,
                                                                 unwritable_storage, how):
    files_before = stored_files(app)
    if how == "web":
        response = logged_in.post(f"/analyses/{analysis_id}/delete")
    else:
        headers = {"Authorization": f"Bearer {token_for(app, 'alice')}"}
        response = app.test_client().delete(f"/api/v1/analyses/{analysis_id}", headers=headers)
    assert response.status_code == 503
    assert b"Nothing was deleted" in response.data
    assert row_count(app) == 1 and stored_files(app) == files_before and deleted_events(app) == 0
    assert logged_in.get(f"/analyses/{analysis_id}").status_code == 200


def test_a_delete_whose_commit_fails_puts_the_files_back(app, logged_in, analysis_id, monkeypatch):
    files_before = stored_files(app)

    def failing_commit():
        raise RuntimeError("database went away")
    with app.app_context():
        monkeypatch.setattr(db.session, "commit", failing_commit)
        response = logged_in.post(f"/analyses/{analysis_id}/delete")
        monkeypatch.undo()
    assert response.status_code == 500
    assert row_count(app) == 1 and stored_files(app) == files_before and deleted_events(app) == 0


def test_of_eight_simultaneous_deletes_exactly_one_wins_and_is_audited(app, logged_in, analysis_id):
    headers = {"Authorization": f"Bearer {token_for(app, 'alice')}"}
    start, statuses = threading.Barrier(8), []

    def delete():
        client = app.test_client()
        start.wait()
        statuses.append(client.delete(f"/api/v1/analyses/{analysis_id}", headers=headers).status_code)
    threads = [threading.Thread(target=delete) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [204] + [404] * 7
    assert deleted_events(app) == 1 and row_count(app) == 0 and stored_files(app) == []


@pytest.mark.parametrize("path", ["image", "heatmap", "report.pdf"])
def test_reading_an_analysis_whose_files_were_just_deleted_is_404(app, logged_in, analysis_id, path):
    # The state a read meets when a delete commits between its query and its file read.
    for name in stored_files(app):
        os.remove(os.path.join(app.config["UPLOAD_FOLDER"], name))
    response = logged_in.get(f"/analyses/{analysis_id}/{path}")
    assert response.status_code == 404 and b"Traceback" not in response.data


def test_deleting_one_analysis_leaves_the_others(app, logged_in, analysis_id):
    other = analysis_id_from(upload(logged_in, benign_jpeg()))
    assert logged_in.post(f"/analyses/{analysis_id}/delete").status_code == 303
    assert row_count(app) == 1 and len(stored_files(app)) == 2 and deleted_events(app) == 1
    assert logged_in.get(f"/analyses/{other}/image").status_code == 200
