"""Database records: users and their analyses."""

import json
import secrets
from datetime import date, datetime, timezone

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String, Text, event, func
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from dermalens.extensions import db
from dermalens.lesions import CLASSES


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def new_public_id() -> str:
    """Random, unguessable identifier used in URLs instead of row numbers."""
    return secrets.token_urlsafe(16)


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


class User(UserMixin, db.Model):
    """A clinician's account.

    A signed-in browser holds the user's `session_token`, never the row id: replacing the token
    (sign-out, password change or reset, disabling) ends every session at once, and an id that a
    database ever handed out again could not sign anyone in. Ids are never reused (SQLite
    AUTOINCREMENT), so a deleted user's audit trail never passes to a new account.
    """

    __tablename__ = "users"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    # Nullable only for accounts made before sessions were revocable: they get one at sign-in.
    session_token: Mapped[str | None] = mapped_column(String(64), index=True, default=new_session_token)
    disabled_at: Mapped[datetime | None]

    analyses: Mapped[list["Analysis"]] = relationship(back_populates="owner", passive_deletes=True)

    def get_id(self) -> str | None:
        """What Flask-Login keeps in the session cookie."""
        return self.session_token

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None

    def end_sessions(self) -> None:
        """Invalidate every session of this user (the caller commits)."""
        self.session_token = new_session_token()

    def set_password(self, password: str) -> None:
        # Werkzeug's default is scrypt (memory-hard).
        self.password_hash = generate_password_hash(password, method="scrypt")

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


# Usernames are told apart without regard to case: "ALICE" cannot register beside "alice".
Index("ux_users_username_folded", func.lower(User.username), unique=True)


class Analysis(db.Model):
    """One image analysed for one clinician, with everything needed to show it again unchanged."""

    __tablename__ = "analyses"
    __table_args__ = (
        Index("ix_analyses_owner_created", "user_id", "created_at"),
        Index("ix_analyses_owner_patient", "user_id", "patient_ref"),
        Index("ix_analyses_owner_risk", "user_id", "risk_category"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)

    # Inputs, as the clinician entered them (all optional except the image).
    patient_ref: Mapped[str | None] = mapped_column(String(64))
    lesion_ref: Mapped[str | None] = mapped_column(String(64))
    age: Mapped[int | None]
    sex: Mapped[str | None] = mapped_column(String(8))
    site: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    original_filename: Mapped[str | None] = mapped_column(String(255))

    # Stored files, relative to the upload folder, named by the app.
    image_file: Mapped[str] = mapped_column(String(80))
    heatmap_file: Mapped[str] = mapped_column(String(80))
    image_width: Mapped[int]
    image_height: Mapped[int]

    # Result.
    probabilities_json: Mapped[str] = mapped_column(Text)
    top_class: Mapped[str] = mapped_column(String(8))
    malignant_probability: Mapped[float]
    risk_category: Mapped[str] = mapped_column(String(16))
    # Why the image gate declined the image ("cannot assess"), as sentences; [] when assessed.
    indeterminate_reasons_json: Mapped[str] = mapped_column(Text, default="[]")
    # Why the answer is uncertain (a flag on an answer, never a decline), as sentences.
    uncertainty_reasons_json: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    # Cautions that leave the answer standing (colours adjusted before analysis), as sentences.
    # The server default fills rows recorded before the column existed (`database.add_missing_columns`).
    notices_json: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    heatmap_class: Mapped[str] = mapped_column(String(8))

    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(32))
    model_sha256: Mapped[str] = mapped_column(String(64))

    # What the lesion turned out to be, recorded later by the clinician (`outcomes`).
    outcome_diagnosis: Mapped[str | None] = mapped_column(String(16))
    outcome_source: Mapped[str | None] = mapped_column(String(24))
    outcome_date: Mapped[date | None]
    outcome_note: Mapped[str | None] = mapped_column(Text)
    outcome_recorded_at: Mapped[datetime | None]

    owner: Mapped[User] = relationship(back_populates="analyses")

    @property
    def declined(self) -> bool:
        """The image gate declined it: its probabilities are not a result."""
        return self.risk_category == "indeterminate"

    @property
    def uncertainty_reasons(self) -> list[str]:
        return json.loads(self.uncertainty_reasons_json)

    @property
    def has_outcome(self) -> bool:
        return self.outcome_diagnosis is not None

    @property
    def probabilities(self) -> dict[str, float]:
        return json.loads(self.probabilities_json)

    @property
    def ranked_classes(self) -> list[tuple[str, float]]:
        """All classes with their probability, most likely first."""
        probabilities = self.probabilities
        return sorted(((name, probabilities[name]) for name in CLASSES), key=lambda item: -item[1])

    @property
    def indeterminate_reasons(self) -> list[str]:
        return json.loads(self.indeterminate_reasons_json)

    @property
    def notices(self) -> list[str]:
        return json.loads(self.notices_json)


class ApiToken(db.Model):
    """A personal API token. Only its SHA-256 is stored; the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # First characters of the token, so a user can tell tokens apart without the secret.
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    owner: Mapped[User] = relationship()

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class AuditEvent(db.Model):
    """One entry of the audit trail. Append-only: the app never updates or deletes these rows
    (enforced below and by database triggers created with the schema)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    # No foreign key cascade: the trail must outlive whatever it describes.
    user_id: Mapped[int | None]
    username: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[str | None] = mapped_column(String(64))
    remote_address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(255))
    # SHA-256 over the previous event's chain_hash and this event's fields (`audit.add`); null
    # only for events written before the trail was chained.
    chain_hash: Mapped[str | None] = mapped_column(String(64))


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _refuse_audit_changes(_mapper, _connection, _target):
    raise PermissionError("audit events are append-only")
