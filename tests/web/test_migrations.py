"""The schema is Alembic's: migrations create it, upgrade an earlier release's database in place,
and match the models exactly; an app on a database behind them says what to run."""

import shutil
import sqlite3

import flask_migrate
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from dermalens import audit
from dermalens.extensions import db
from dermalens.records import Analysis, ApiToken, AuditEvent, User
from tests.helpers import FIXTURES, ON_POSTGRESQL, PASSWORD, make_app, upgrade_database

# Made by release 1.2 (before migrations): one user (dr_legacy, PASSWORD "correct horse battery
# staple"), three analyses, an API token and six audit events (tests/fixtures/README.md).
RELEASE_DATABASE = FIXTURES / "database-release-1.2.sqlite"
sqlite_only = pytest.mark.skipif(ON_POSTGRESQL, reason="an earlier release's database file is SQLite")


# SQLite cannot reflect the index on lower(username), so the comparison skips it (and says so);
# the upgrade tests and test_auth cover it.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_the_migrations_build_exactly_the_models_schema(app):
    with app.app_context(), db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert differences == []


@sqlite_only
def test_a_release_database_is_upgraded_in_place_without_losing_a_row(tmp_path):
    shutil.copy(RELEASE_DATABASE, tmp_path / "old.sqlite")
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    before = _row_counts(tmp_path / "old.sqlite")
    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=url)
    client = app.test_client()
    assert client.get("/login").status_code == 503  # not yet upgraded: says so, changes nothing
    assert "flask --app app db upgrade" in app.test_client().get("/api/health").get_data(as_text=True)
    upgrade_database(app)
    assert _row_counts(tmp_path / "old.sqlite") == before
    assert client.post("/login", data={"username": "dr_legacy", "password": PASSWORD}).status_code == 302
    assert client.get("/history").status_code == 200
    with app.app_context():
        assert db.session.query(Analysis).count() == 3 and db.session.query(ApiToken).count() == 1
        assert audit.verify_chain(db.session)[1] is None  # the old trail's chain still holds, new events included
    upgrade_database(app)  # a second upgrade finds nothing to do
    assert _row_counts(tmp_path / "old.sqlite")["analyses"] == 3


@sqlite_only
def test_an_older_database_missing_later_columns_gets_them(tmp_path):
    shutil.copy(RELEASE_DATABASE, tmp_path / "old.sqlite")
    with sqlite3.connect(tmp_path / "old.sqlite") as connection:  # as releases before notices left it
        connection.execute("ALTER TABLE analyses DROP COLUMN notices_json")
    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'old.sqlite'}")
    upgrade_database(app)
    with app.app_context():
        assert {analysis.notices_json for analysis in db.session.query(Analysis)} == {"[]"}


def test_the_audit_trail_stays_append_only_on_this_database(app):
    with app.app_context():
        audit.record(db.session, "sign_in", username="someone")
        for statement in ("UPDATE audit_events SET detail = 'rewritten'", "DELETE FROM audit_events"):
            with pytest.raises(Exception, match="append-only"):
                db.session.execute(db.text(statement))
            db.session.rollback()
        assert db.session.query(AuditEvent).count() == 1 and audit.verify_chain(db.session)[1] is None


def test_downgrade_removes_the_schema_and_upgrade_restores_it(tmp_path):
    app = make_app(tmp_path)
    with app.app_context():
        flask_migrate.downgrade(revision="base")
        assert not db.inspect(db.engine).has_table("users")
        flask_migrate.upgrade()
        assert db.inspect(db.engine).has_table("users") and db.session.query(User).count() == 0


def _row_counts(path) -> dict:
    with sqlite3.connect(path) as connection:
        return {table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # nosec B608
                for table in ("users", "analyses", "api_tokens", "audit_events")}
