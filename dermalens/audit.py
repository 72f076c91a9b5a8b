"""The audit trail: who did what to which record, when, and from where.

`record` appends an event in its own short transaction, so an audit entry is never lost with a
rolled-back request and never keeps a transaction open; `add` puts one into a transaction that
also makes the change it records (a deletion), so that both happen or neither.

The trail is append-only (database triggers) and tamper-evident: each event carries a SHA-256
chained to the one before it, so `verify_chain` (`flask --app app audit verify`) finds any event
changed, removed or inserted out of order. Anyone able to rewrite the database could recompute
the chain from the altered event on; keeping the head hash it prints elsewhere (e.g. with each
backup) anchors it.
"""

import csv
import json
from typing import IO

from sqlalchemy import func, insert, literal, select, text
from sqlalchemy.orm import Session

from dermalens.database import chain_hash
from dermalens.records import AuditEvent, utc_now

# Bandit (B105) mistakes the "token" labels below for passwords; they are display labels.
ACTIONS = {
    "sign_in": "Signed in",
    "sign_in_failed": "Failed sign-in",
    "sign_out": "Signed out",
    "register": "Registered",
    "password_changed": "Password changed",
    "password_reset": "Password reset by the operator",
    "account_disabled": "Account disabled by the operator",
    "account_enabled": "Account enabled by the operator",
    "analysis_created": "Analysis created",
    "analysis_viewed": "Analysis viewed",
    "analyses_listed": "Analyses listed",
    "analysis_downloaded": "Report or file downloaded",
    "analysis_deleted": "Analysis deleted",
    "outcome_recorded": "Outcome recorded",
    "site_performance_viewed": "Site performance viewed",
    "token_created": "API token created",  # nosec B105
    "token_revoked": "API token revoked",  # nosec B105
}
# PostgreSQL advisory lock key of the audit chain (any constant the app uses for nothing else).
CHAIN_LOCK = 0x0DE57A1A
EXPORT_COLUMNS = ("id", "created_at", "user_id", "username", "action", "record_id", "remote_address",
                  "detail", "chain_hash")


def record(session: Session, action: str, **fields) -> None:
    """Append one event and commit it (with whatever else the session holds); fields as `add`."""
    add(session, action, **fields)
    session.commit()


def add(session: Session, action: str, user=None, username: str | None = None,
        record_id: str | None = None, remote_address: str | None = None,
        detail: str | None = None) -> None:
    """Add one event to the session's transaction, to be committed with the change it records.
    `user` is a User or None (e.g. a failed sign-in, then give `username`)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    fields = dict(created_at=utc_now(), user_id=getattr(user, "id", None),
                  username=(getattr(user, "username", None) or username or "")[:64], action=action,
                  record_id=record_id, remote_address=(remote_address or "")[:64],
                  detail=(detail or "")[:255] or None)
    # The previous hash is read by the INSERT itself, under a lock held to the commit (SQLite's
    # write lock; on PostgreSQL, whose writers do not wait for one another, an advisory lock), so
    # two workers appending at once cannot both chain to the same event.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})
    previous = select(AuditEvent.chain_hash).order_by(AuditEvent.id.desc()).limit(1).scalar_subquery()
    link = func.dermalens_chain(previous, literal(canonical_fields(fields)))
    session.execute(insert(AuditEvent).from_select(
        [*fields, "chain_hash"], select(*(literal(value, AuditEvent.__table__.c[name].type)
                                          for name, value in fields.items()), link)))


# What an event's chain hash covers, in this order: every column but the id and the hash.
CHAINED_FIELDS = ("created_at", "user_id", "username", "action", "record_id", "remote_address", "detail")


def canonical_fields(fields: dict) -> str:
    """The text an event's chain hash covers: its CHAINED_FIELDS as a JSON list."""
    return json.dumps([fields["created_at"].isoformat(), *(fields[name] for name in CHAINED_FIELDS[1:])],
                      ensure_ascii=False)


def verify_chain(session: Session) -> tuple[int, int | None, str | None]:
    """Check the trail, oldest first: (events checked, id of the first broken event or None,
    the head hash). An event is broken if it was changed, if one before it was removed, or if
    it was inserted out of order; events from before the chain began are skipped."""
    previous, checked, started = None, 0, False
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.id)):
        if event.chain_hash is None and not started:
            continue  # written before this release chained the trail
        started = True
        fields = {name: getattr(event, name) for name in CHAINED_FIELDS}
        if event.chain_hash != chain_hash(previous, canonical_fields(fields)):
            return checked, event.id, previous
        previous, checked = event.chain_hash, checked + 1
    return checked, None, previous


def events_for_user(session: Session, user_id: int, limit: int = 50) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.user_id == user_id)
                                .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
                                .limit(limit)))


def _spreadsheet_safe(value: str | None) -> str | None:
    """Neutralise text a spreadsheet would run as a formula (e.g. a typed-in username "=cmd")."""
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


def export_csv(session: Session, handle: IO[str]) -> int:
    """Write every event, oldest first, as CSV; returns the number of events."""
    writer = csv.writer(handle)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.id)):
        writer.writerow([event.id, event.created_at.isoformat(timespec="seconds") + "Z", event.user_id,
                         *(_spreadsheet_safe(value) for value in (
                             event.username, event.action, event.record_id, event.remote_address,
                             event.detail)), event.chain_hash])
        count += 1
    return count
