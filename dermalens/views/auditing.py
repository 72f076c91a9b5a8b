"""Audit events from inside a request: the acting user and the client address filled in."""

from flask import g, request
from flask_login import current_user

from dermalens import audit
from dermalens.extensions import db


def log_event(action: str, record_id: str | None = None, user=None, **details) -> None:
    """Append an audit event for the signed-in (or API-token) user unless `user` is given."""
    if user is None:
        user = getattr(g, "api_user", None) or (current_user if current_user.is_authenticated else None)
    audit.record(db.session, action, user=user, record_id=record_id,
                 remote_address=request.remote_addr, **details)
