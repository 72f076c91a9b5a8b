"""SQLite connection settings and schema creation."""

from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from dermalens.extensions import db

BUSY_TIMEOUT_MS = 10_000


def configure_sqlite(engine: Engine) -> None:
    """WAL (readers never block the writer), a busy timeout and foreign keys on every connection."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


# The audit trail is append-only even for code that bypasses the ORM.
_AUDIT_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
)


def create_schema() -> None:
    """Create missing tables, indexes and triggers (idempotent)."""
    from dermalens import records  # noqa: F401  (registers the tables)

    db.create_all()
    if db.engine.dialect.name == "sqlite":
        with db.engine.begin() as connection:
            for statement in _AUDIT_TRIGGERS:
                connection.execute(text(statement))
