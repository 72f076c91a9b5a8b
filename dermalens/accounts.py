"""User accounts as a service: registration, credential checks, password changes and the end of
sessions (no Flask here). Usernames keep the case they were registered with and are compared
without it."""

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from dermalens.records import User, utc_now

# Checked against when the username does not exist, so that a wrong username and a wrong
# password take the same time and cannot be told apart.
_DUMMY_HASH = generate_password_hash("not-a-real-password", method="scrypt")


class AccountError(ValueError):
    pass


def find_user(session: Session, username: str) -> User | None:
    """The account of this username, whatever its case."""
    return session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))


def create_user(session: Session, username: str, password: str) -> User:
    """:raise AccountError: the username is taken (in any case)."""
    if find_user(session, username) is not None:
        raise AccountError("That username is already taken.")
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
    """The active user if the credentials are right, else None (same cost either way)."""
    user = find_user(session, username)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not user.check_password(password) or not user.is_active:
        return None
    if user.session_token is None:  # an account made before sessions were revocable
        user.end_sessions()
        session.commit()
    return user


def end_sessions(session: Session, user: User) -> None:
    """Sign the user out everywhere: every session cookie issued so far stops working."""
    user.end_sessions()
    session.commit()


def change_password(session: Session, user: User, current: str, new: str) -> None:
    """Replace the password and end every session (the caller signs this one in again).

    :raise AccountError: the current password is wrong (nothing changed).
    """
    if not user.check_password(current):
        raise AccountError("The current password is not correct.")
    reset_password(session, user, new)


def reset_password(session: Session, user: User, new: str) -> None:
    """An operator's reset: the new password, and every session ended."""
    user.set_password(new)
    user.end_sessions()
    session.commit()


def set_disabled(session: Session, user: User, disabled: bool) -> None:
    """Disable (every session ended, sign-in and API tokens refused) or enable again."""
    user.disabled_at = utc_now() if disabled else None
    user.end_sessions()
    session.commit()
