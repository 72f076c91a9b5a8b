"""User accounts as a service: registration and credential checks (no Flask here)."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from dermalens.records import User

# Checked against when the username does not exist, so that a wrong username and a wrong
# password take the same time and cannot be told apart.
_DUMMY_HASH = generate_password_hash("not-a-real-password", method="scrypt")


class AccountError(ValueError):
    pass


def create_user(session: Session, username: str, password: str) -> User:
    """:raise AccountError: the username is taken."""
    user = User(username=username.strip())
    user.set_password(password)
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise AccountError("That username is already taken.") from None
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The user if the credentials are right, else None (same cost either way)."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        from werkzeug.security import check_password_hash

        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if user.check_password(password) else None
