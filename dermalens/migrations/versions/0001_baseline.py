"""Baseline: the schema of release 1.2 (users, analyses, API tokens, the chained audit trail).

Revision ID: 0001
Revises:
Created: 2026-12-02

Creates the schema on an empty database, and brings a database made by an earlier release
(before migrations) up to it in place: missing tables, columns (all nullable or with a server
default, so old rows fill them), indexes, the audit trail's append-only triggers and, on
PostgreSQL, its chain function. Every step checks what is there first, so a release-1.2 database
upgrades without losing a row.

The tables are a frozen copy of what dermalens.records declared then; later changes go into new
migrations, never here.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import CreateColumn, CreateIndex

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

metadata = sa.MetaData()

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("session_token", sa.String(64), index=True),
    sa.Column("disabled_at", sa.DateTime),
    sqlite_autoincrement=True,
)
sa.Index("ux_users_username_folded", sa.func.lower(users.c.username), unique=True)

analyses = sa.Table(
    "analyses", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("patient_ref", sa.String(64)),
    sa.Column("lesion_ref", sa.String(64)),
    sa.Column("age", sa.Integer),
    sa.Column("sex", sa.String(8)),
    sa.Column("site", sa.String(32)),
    sa.Column("note", sa.Text),
    sa.Column("original_filename", sa.String(255)),
    sa.Column("image_file", sa.String(80), nullable=False),
    sa.Column("heatmap_file", sa.String(80), nullable=False),
    sa.Column("image_width", sa.Integer, nullable=False),
    sa.Column("image_height", sa.Integer, nullable=False),
    sa.Column("probabilities_json", sa.Text, nullable=False),
    sa.Column("top_class", sa.String(8), nullable=False),
    sa.Column("malignant_probability", sa.Double, nullable=False),
    sa.Column("risk_category", sa.String(16), nullable=False),
    sa.Column("indeterminate_reasons_json", sa.Text, nullable=False),
    sa.Column("uncertainty_reasons_json", sa.Text, nullable=False, server_default="[]"),
    sa.Column("notices_json", sa.Text, nullable=False, server_default="[]"),
    sa.Column("heatmap_class", sa.String(8), nullable=False),
    sa.Column("model_name", sa.String(64), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("model_sha256", sa.String(64), nullable=False),
    sa.Column("outcome_diagnosis", sa.String(16)),
    sa.Column("outcome_source", sa.String(24)),
    sa.Column("outcome_date", sa.Date),
    sa.Column("outcome_note", sa.Text),
    sa.Column("outcome_recorded_at", sa.DateTime),
    sa.Index("ix_analyses_owner_created", "user_id", "created_at"),
    sa.Index("ix_analyses_owner_patient", "user_id", "patient_ref"),
    sa.Index("ix_analyses_owner_risk", "user_id", "risk_category"),
)

api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(12), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_used_at", sa.DateTime),
    sa.Column("revoked_at", sa.DateTime),
)

audit_events = sa.Table(
    "audit_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.DateTime, nullable=False, index=True),
    sa.Column("user_id", sa.Integer),
    sa.Column("username", sa.String(64)),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("record_id", sa.String(64)),
    sa.Column("remote_address", sa.String(64)),
    sa.Column("detail", sa.String(255)),
    sa.Column("chain_hash", sa.String(64)),
    sa.Index("ix_audit_user_created", "user_id", "created_at"),
)

# The audit trail is append-only even for code (or people) that bypass the app.
SQLITE_AUDIT_RULES = (
    "CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
)
POSTGRESQL_AUDIT_RULES = (
    """CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit events are append-only'; END $$""",
    "CREATE OR REPLACE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
    "CREATE OR REPLACE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
    "CREATE OR REPLACE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()",
    # The chain's link, as dermalens.database.chain_hash computes it (SQLite registers that
    # Python function on each connection instead). Not STRICT: the first event has no previous.
    """CREATE OR REPLACE FUNCTION dermalens_chain(previous text, payload text) RETURNS text
       LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
       SELECT encode(sha256(convert_to(coalesce(previous, '') || E'\\n' || payload, 'UTF8')), 'hex') $$""",
)


def upgrade():
    bind = op.get_bind()
    metadata.create_all(bind, checkfirst=True)
    _add_missing_columns(bind)
    for table in metadata.sorted_tables:
        for index in table.indexes:
            try:
                op.execute(CreateIndex(index, if_not_exists=True))
            except IntegrityError:
                # Usernames that differ only in case, made before they were case-insensitive:
                # new ones are refused by accounts.create_user all the same.
                if index.name != "ux_users_username_folded":
                    raise
    rules = {"sqlite": SQLITE_AUDIT_RULES, "postgresql": POSTGRESQL_AUDIT_RULES}
    for statement in rules.get(bind.dialect.name, ()):
        op.execute(statement)


def _add_missing_columns(bind) -> None:
    """Columns an earlier release's tables lack (each nullable or with a server default)."""
    inspector = sa.inspect(bind)
    for table in metadata.sorted_tables:
        existing = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in existing:
                definition = CreateColumn(column).compile(dialect=bind.dialect)
                op.execute(f"ALTER TABLE {table.name} ADD COLUMN {definition}")


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS dermalens_chain(text, text)")
    metadata.drop_all(bind)
    if bind.dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only() CASCADE")
