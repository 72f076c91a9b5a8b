"""The audit trail: every sensitive action recorded, append-only, visible to its user, exportable."""

import csv
import io

import pytest
from sqlalchemy import text

from dermalens.extensions import db
from dermalens.records import AuditEvent
from tests.helpers import ON_POSTGRESQL, token_for, upload
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


def verify(runner):
    return runner.invoke(args=["audit", "verify"])


def some_trail(auth, client):
    auth.register("alice")
    upload(client, benign_jpeg())
    client.get("/history")
    auth.logout()
    auth.register("bob")


def raw(app, *statements):
    """Run SQL as someone with the database file (or the server's superuser) would, past the app
    and its triggers."""
    with app.app_context():
        with db.engine.begin() as connection:
            if ON_POSTGRESQL:
                connection.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
            else:
                connection.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
                connection.execute(text("DROP TRIGGER IF EXISTS audit_events_no_delete"))
            for statement in statements:
                connection.execute(text(statement))


def test_an_intact_trail_verifies(app, runner, auth, client):
    some_trail(auth, client)
    result = verify(runner)
    assert result.exit_code == 0 and "intact: 5 events" in result.output


@pytest.mark.parametrize("tamper, broken", [
    ("UPDATE audit_events SET detail = 'nothing to see' WHERE id = 3", 3),
    ("UPDATE audit_events SET created_at = '2020-01-01 00:00:00.000000' WHERE id = 2", 2),
    ("DELETE FROM audit_events WHERE id = 3", 4),
    ("DELETE FROM audit_events WHERE id = 1", 2),
    ("INSERT INTO audit_events (id, created_at, action, username, chain_hash) SELECT 100, created_at, "
     "'sign_in', 'mallory', chain_hash FROM audit_events WHERE id = 5", 100),
    ("UPDATE audit_events SET id = 50 WHERE id = 2", 3),
])
def test_a_changed_removed_or_inserted_event_is_named(app, runner, auth, client, tamper, broken):
    some_trail(auth, client)
    raw(app, tamper)
    result = verify(runner)
    assert result.exit_code == 1 and f"broken at event {broken}:" in result.output


# What each database offers for overwriting a row in place, besides UPDATE and DELETE.
REPLACING = (["INSERT INTO audit_events (id, created_at, action) VALUES (1, '2026-01-01', 'x') "
              "ON CONFLICT (id) DO UPDATE SET action = 'x'", "TRUNCATE audit_events"] if ON_POSTGRESQL else
             ["INSERT OR REPLACE INTO audit_events (id, created_at, action) VALUES (1, '2026-01-01', 'x')",
              "REPLACE INTO audit_events (id, created_at, action) VALUES (1, '2026-01-01', 'x')"])


@pytest.mark.parametrize("statement", REPLACING)
def test_replacing_an_event_is_refused(app, auth, statement):
    auth.register()
    with app.app_context():
        with pytest.raises(Exception, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()
        assert db.session.query(AuditEvent).one().action == "register"


def test_events_appended_by_concurrent_requests_form_one_chain(app, runner, auth):
    import threading
    auth.register()
    token = token_for(app, "alice")
    start = threading.Barrier(8)

    def list_analyses():
        start.wait()
        app.test_client().get("/api/v1/analyses", headers={"Authorization": f"Bearer {token}"})
    threads = [threading.Thread(target=list_analyses) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert verify(runner).exit_code == 0
    assert len(events(app, "analyses_listed")) == 8
