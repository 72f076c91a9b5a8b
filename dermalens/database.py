"""SQLite connection settings and schema creation."""

import hashlib

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.schema import CreateColumn

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
        # So that INSERT OR REPLACE, which deletes the row it replaces, meets the audit trail's
        # no-delete trigger instead of silently rewriting an event.
        cursor.execute("PRAGMA recursive_triggers=ON")
        cursor.close()
        dbapi_connection.create_function("dermalens_chain", 2, chain_hash, deterministic=True)


def chain_hash(previous: str | None, payload: str) -> str:
    """The audit chain's link: SHA-256 (hex) of the previous event's hash and this event's
    canonical fields (`audit.canonical_fields`)."""
    return hashlib.sha256(f"{previous or ''}\n{payload}".encode()).hexdigest()


# The audit trail is append-only even for code that bypasses the ORM.
_AUDIT_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
)


# Indexes a newer release added to existing tables (`create_all` only indexes new tables).
_ADDED_INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_users_username_folded ON users (lower(username))",
    "CREATE INDEX IF NOT EXISTS ix_users_session_token ON users (session_token)",
)


def create_schema() -> None:
    """Create missing tables, columns, indexes and triggers (idempotent)."""
    from dermalens import records  # noqa: F401  (registers the tables)

    db.create_all()
    add_missing_columns()
    for statement in _ADDED_INDEXES:
        try:
            with db.engine.begin() as connection:
                connection.execute(text(statement))
        except IntegrityError:
            # Accounts that differ only in case, made before usernames were case-insensitive:
            # new ones are still refused by `accounts.create_user`.
            pass
    if db.engine.dialect.name == "sqlite":
        with db.engine.begin() as connection:
            for statement in _AUDIT_TRIGGERS:
                connection.execute(text(statement))


def add_missing_columns() -> list[str]:
    """Add the columns a newer DermaLens gave existing tables (an upgrade keeps its database).

    `create_all` creates missing tables only. Every column added to a table after its first
    release must therefore be nullable or have a server default, so rows recorded before fill it.
    Safe when several workers start at once: a column another one just added is left alone.

    :return: the columns added, as "table.column".
    :raise RuntimeError: a missing column that old rows could not fill.
    """
    inspector = inspect(db.engine)
    added = []
    for table in db.metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        existing = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in existing:
                continue
            if not column.nullable and column.server_default is None:
                raise RuntimeError(f"Cannot add {table.name}.{column.name} to an existing database: "
                                   "it is NOT NULL without a server default.")
            definition = CreateColumn(column).compile(dialect=db.engine.dialect)
            try:
                with db.engine.begin() as connection:
                    connection.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {definition}"))
            except OperationalError as error:
                if "duplicate column" not in str(error):
                    raise
                continue  # another worker was first
            added.append(f"{table.name}.{column.name}")
    return added
