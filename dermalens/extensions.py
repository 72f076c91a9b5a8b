"""Flask extensions, created unbound here and bound to the app in `create_app`."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
migrate = Migrate()
csrf = CSRFProtect()
# Keyed on the TCP peer address, never on X-Forwarded-For, which a client can forge. Behind a
# trusted proxy, the app applies ProxyFix with a fixed hop count (see create_app).
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def config_limit(key: str):
    """A rate limit read from app config at request time (so tests and operators can change it)."""
    from flask import current_app

    return lambda: current_app.config[key]


def signing_in_account() -> str:
    """The rate-limit key of the account a sign-in form (or the signed-in user) names: so one
    clinician's failures never lock out colleagues behind the same address. Usernames compare
    without regard to case, as accounts do."""
    from flask import request
    from flask_login import current_user

    if current_user.is_authenticated:
        return f"account:{current_user.username.lower()}"
    return f"account:{(request.form.get('username') or '').strip().lower()[:64]}"
