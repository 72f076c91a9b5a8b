"""SQLite connection settings and schema creation."""

from sqlalchemy import event
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


def create_schema() -> None:
    """Create missing tables and indexes (idempotent)."""
    from dermalens import records  # noqa: F401  (registers the tables)

    db.create_all()
