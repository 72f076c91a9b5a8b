"""The audit trail: every sensitive action recorded, append-only, visible to its user, exportable."""

import csv
import io

import pytest
from sqlalchemy import text

from dermalens.extensions import db
from dermalens.records import AuditEvent
from tests.helpers import token_for, upload
from tests.images import benign_jpeg


def actions(app, username=None):
    with app.app_context():
        query = db.session.query(AuditEvent).order_by(AuditEvent.id)
        if username:
            query = query.filter_by(username=username)
        return [(e.action, e.record_id) for e in query]


def test_web_actions_are_recorded_with_who_what_and_where(app, client, auth):
    auth.register()
    auth.logout()
    auth.login("alice", "wrong password here")
    auth.login()
    analysis_id = upload(client, benign_jpeg()).headers["Location"].rsplit("/", 1)[1]
    client.get(f"/analyses/{analysis_id}")
    client.get(f"/analyses/{analysis_id}/report.pdf")
    client.post(f"/analyses/{analysis_id}/delete")
    client.post("/account/tokens", data={"name": "pacs"})
    auth.logout()
    recorded = [action for action, _ in actions(app)]
    assert recorded == ["register", "sign_out", "sign_in_failed", "sign_in", "analysis_created",
                        "analysis_viewed", "analysis_downloaded", "analysis_deleted",
                        "token_created", "sign_out"]
    assert ("analysis_deleted", analysis_id) in actions(app)
    with app.app_context():
        failed = db.session.query(AuditEvent).filter_by(action="sign_in_failed").one()
        assert failed.user_id is None and failed.username == "alice"
        assert failed.remote_address == "127.0.0.1"


def test_api_actions_are_recorded(app, auth):
    auth.register()
    headers = {"Authorization": f"Bearer {token_for(app, 'alice')}"}
    client = app.test_client()
    created = client.post("/api/v1/analyses", headers=headers,
                          data={"image": (io.BytesIO(benign_jpeg()), "x.jpg")}).json
    client.get(f"/api/v1/analyses/{created['id']}", headers=headers)
    client.delete(f"/api/v1/analyses/{created['id']}", headers=headers)
    assert [a for a, _ in actions(app)][-3:] == ["analysis_created", "analysis_viewed", "analysis_deleted"]


def test_audit_events_cannot_be_changed_or_deleted(app, auth):
    auth.register()
    with app.app_context():
        event = db.session.query(AuditEvent).first()
        event.action = "nothing"
        with pytest.raises(PermissionError):
            db.session.commit()
        db.session.rollback()
        with pytest.raises(Exception, match="append-only"):
            db.session.execute(text("DELETE FROM audit_events"))
        db.session.rollback()
        assert db.session.query(AuditEvent).count() == 1


def test_users_see_only_their_own_trail(client, auth):
    auth.register("alice")
    auth.logout()
    auth.register("bob")
    page = client.get("/account").get_data(as_text=True)
    assert "Registered" in page and page.count("<tr><td>") == 1  # bob's registration only


def test_audit_export_command_writes_csv(app, runner, auth):
    auth.register("alice")
    auth.logout()
    auth.login("=HYPERLINK(evil)", "whatever password")
    result = runner.invoke(args=["audit", "export"])
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["action"] for row in rows] == ["register", "sign_out", "sign_in_failed"]
    assert rows[2]["username"].startswith("'=")  # defused for spreadsheets


def events(app, action):
    with app.app_context():
        return [(e.record_id, e.detail) for e in db.session.query(AuditEvent).filter_by(action=action)]


def test_a_history_page_is_one_audited_read_with_its_count_and_filters(app, logged_in, analysis_id):
    logged_in.get("/history?patient_ref=PT-0")
    assert events(app, "analyses_listed") == [(None, "1 analyses, page 1; filters patient_ref=PT-0")]


def test_an_api_listing_is_one_audited_read(app, auth):
    auth.register()
    headers = {"Authorization": f"Bearer {token_for(app, 'alice')}"}
    client = app.test_client()
    for _ in range(3):
        client.post("/api/v1/analyses", headers=headers, data={"image": (io.BytesIO(benign_jpeg()), "x.jpg")})
    assert len(client.get("/api/v1/analyses?per_page=100", headers=headers).json["items"]) == 3
    assert events(app, "analyses_listed") == [(None, "API 3 analyses, page 1")]


@pytest.mark.parametrize("which", ["image", "heatmap"])
def test_image_and_heatmap_downloads_are_audited(app, logged_in, analysis_id, which):
    assert logged_in.get(f"/analyses/{analysis_id}/{which}").status_code == 200
    assert events(app, "analysis_downloaded") == [(analysis_id, which)]
