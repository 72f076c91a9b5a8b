"""Database connections (SQLite or PostgreSQL) and the schema's migration state.

The schema is created and upgraded by Alembic migrations (dermalens/migrations, run with
`flask --app app db upgrade`), never by the app as it starts: several workers or hosts starting
at once must not race to alter it. An app whose database is behind its migrations answers 503
with that command (`schema_problem`) until it is upgraded.
"""

import hashlib
from functools import lru_cache
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

BUSY_TIMEOUT_MS = 10_000
MIGRATIONS = Path(__file__).parent / "migrations"


def engine_options(url: str, pool_size: int, statement_timeout_ms: int) -> dict:
    """SQLAlchemy engine options for the database at `url`: for PostgreSQL a pool of
    `pool_size` connections checked before use (a restarted server or a dropped connection costs
    one retry, not an error page) and a statement timeout; SQLite needs none."""
    if not url.startswith("postgresql"):
        return {}
    return {"pool_size": pool_size, "max_overflow": pool_size, "pool_pre_ping": True,
            "connect_args": {"options": f"-c statement_timeout={int(statement_timeout_ms)}"}}


def configure_connections(engine: Engine) -> None:
    """SQLite: WAL (readers never block the writer), a busy timeout, foreign keys and the audit
    chain's function on every connection. PostgreSQL has all of this from its migrations."""
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


def schema_problem(engine: Engine) -> str | None:
    """Why the database cannot serve this release (its schema is not at the migrations' head),
    as a message for the operator; None when it can."""
    from alembic.runtime.migration import MigrationContext

    expected = _migration_heads()
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    if current == expected:
        return None
    return (f"The database schema is at revision {', '.join(sorted(current)) or 'none'}, this release "
            f"needs {', '.join(sorted(expected))}: run `flask --app app db upgrade` (make run does).")


@lru_cache(maxsize=1)
def _migration_heads() -> frozenset[str]:
    """The revisions this release's migrations end at (read from disk once per process: the
    health check asks on every probe)."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory(str(MIGRATIONS)).get_heads())
