"""Personal API tokens as a service: issue (shown once), verify by hash, list, revoke."""

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from dermalens.records import ApiToken, User, utc_now

# A public prefix marking DermaLens tokens, not a secret (bandit B105 thinks otherwise).
TOKEN_PREFIX = "dl_"  # nosec B105
MAX_NAME_LENGTH = 64


class TokenError(ValueError):
    pass


def hash_token(token: str) -> str:
    # Tokens are 256-bit random values, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns (record, token). The token is not stored anywhere.

    :raise TokenError: empty or too long name.
    """
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise TokenError(f"Give the token a name of 1 to {MAX_NAME_LENGTH} characters.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(user_id=user.id, name=name, token_hash=hash_token(token), prefix=token[:10])
    session.add(record)
    session.commit()
    return record, token


def user_for_token(session: Session, token: str | None) -> User | None:
    """The owner of an active token, or None (also for a disabled account); records when the
    token was last used."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    record = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if record is None or not record.active or not record.owner.is_active:
        return None
    record.last_used_at = utc_now()
    session.commit()
    return record.owner


def list_tokens(session: Session, user_id: int) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user_id)
                                .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def get_token(session: Session, user_id: int, public_id: str) -> ApiToken | None:
    """The user's token with this public id; None if they have none (another user's counts as none)."""
    return session.scalar(select(ApiToken).where(ApiToken.public_id == public_id,
                                                 ApiToken.user_id == user_id))


def revoke_token(session: Session, user_id: int, public_id: str) -> bool:
    """Revoke the user's token; False if no such token of theirs (another user's counts as none)."""
    record = get_token(session, user_id, public_id)
    if record is None:
        return False
    if record.revoked_at is None:
        record.revoked_at = utc_now()
        session.commit()
    return True
