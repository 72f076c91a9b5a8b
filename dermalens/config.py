"""Configuration read from the environment (see the table in README.md).

This is the only module that reads environment variables. `DERMALENS_ENV` is "production" unless
set otherwise: a deployment that forgets to configure itself gets the strict settings, not the
convenient ones.
"""

import os
import secrets
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_CARD = PROJECT_ROOT / "models" / "dermalens-resnet18s-v1.json"
# Values that must never be used as a production SECRET_KEY.
KNOWN_WEAK_SECRETS = {"", "dev", "secret", "changeme", "change-me", "development", "test"}
MIN_SECRET_LENGTH = 32


class ConfigurationError(RuntimeError):
    """The app cannot start with this configuration; the message says what to fix."""


def from_environment(instance_path: str) -> dict:
    """Settings for `app.config`, from environment variables with safe defaults."""
    environment = os.environ.get("DERMALENS_ENV", "production")
    production = environment == "production"
    database = (database_url(os.environ.get("DATABASE_URL"))
                or f"sqlite:///{Path(instance_path) / 'dermalens.sqlite'}")
    return {
        "ENV_NAME": environment,
        "SECRET_KEY": os.environ.get("SECRET_KEY"),
        "SQLALCHEMY_DATABASE_URI": database,
        "MODEL_CARD": os.environ.get("DERMALENS_MODEL_CARD", str(DEFAULT_MODEL_CARD)),
        "UPLOAD_FOLDER": os.environ.get("DERMALENS_UPLOAD_FOLDER", str(Path(instance_path) / "uploads")),
        "MAX_CONTENT_LENGTH": int(os.environ.get("DERMALENS_MAX_UPLOAD_MB", "20")) * 1024 * 1024,
        "MAX_FORM_PARTS": 50,
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_HEADERS_ENABLED": True,
        # Sign-in attempts per account (against guessing one clinician's password) and per client
        # address (against trying many accounts); a whole clinic may share one address.
        "LOGIN_RATE_LIMIT": os.environ.get("DERMALENS_LOGIN_RATE_LIMIT", "10 per minute"),
        "LOGIN_ADDRESS_RATE_LIMIT": os.environ.get("DERMALENS_LOGIN_ADDRESS_RATE_LIMIT", "300 per minute"),
        "ANALYSIS_RATE_LIMIT": os.environ.get("DERMALENS_ANALYSIS_RATE_LIMIT", "120 per minute"),
        "PDF_RATE_LIMIT": os.environ.get("DERMALENS_PDF_RATE_LIMIT", "60 per minute"),
        "HISTORY_PAGE_SIZE": 20,
        # The clinic's time zone (IANA name): how screens and reports show times (stored in UTC).
        "TIME_ZONE": os.environ.get("DERMALENS_TIME_ZONE", "UTC"),
        # A signed-in browser is signed out after this long without a request, or this long
        # after signing in, whatever it does.
        "SESSION_IDLE_MINUTES": int(os.environ.get("DERMALENS_SESSION_IDLE_MINUTES", "30")),
        "SESSION_MAX_HOURS": int(os.environ.get("DERMALENS_SESSION_MAX_HOURS", "12")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "WTF_CSRF_TIME_LIMIT": None,
        "PREFERRED_URL_SCHEME": "https" if production else "http",
    }


def database_url(url: str | None) -> str | None:
    """DATABASE_URL for SQLAlchemy: a plain postgres:// or postgresql:// URL (as managed
    databases hand them out) goes through psycopg 3, the driver installed."""
    for plain in ("postgres://", "postgresql://"):
        if url and url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def database_engine_options(url: str) -> dict:
    """Connection pool and timeout settings (DERMALENS_DB_POOL_SIZE per worker, default 5;
    DERMALENS_DB_STATEMENT_TIMEOUT_MS, default 30000) for `url`."""
    from dermalens.database import engine_options

    return engine_options(url, int(os.environ.get("DERMALENS_DB_POOL_SIZE", "5")),
                          int(os.environ.get("DERMALENS_DB_STATEMENT_TIMEOUT_MS", "30000")))


def instance_path() -> str:
    """Where the database, secret key and uploads live: DERMALENS_INSTANCE_PATH or instance/."""
    return os.environ.get("DERMALENS_INSTANCE_PATH") or str(PROJECT_ROOT / "instance")


def proxy_hops() -> int:
    """How many proxies in front of the app set X-Forwarded-For/-Proto (DERMALENS_PROXY_HOPS)."""
    return int(os.environ.get("DERMALENS_PROXY_HOPS", "0"))


def gunicorn_settings() -> dict:
    """Gunicorn's bind address, workers, threads and timeout (see `dermalens.gunicorn_config`)."""
    return {
        "bind": os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '5000')}"),
        "workers": int(os.environ.get("WEB_CONCURRENCY", "1")),
        "threads": int(os.environ.get("GUNICORN_THREADS", "4")),
        "timeout": int(os.environ.get("GUNICORN_TIMEOUT", "120")),
    }


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter unless the operator asked for it; call before
    TensorFlow is first imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def ensure_secret_key(config: dict, instance_path: str) -> None:
    """Give the app a secret key, or refuse to start.

    Production requires SECRET_KEY from the environment (at least 32 characters, not a known
    default). Elsewhere a random key is generated once and kept in instance/secret_key, so sessions
    survive restarts of a local install.

    :raise ConfigurationError: production without a real SECRET_KEY.
    """
    key = config.get("SECRET_KEY")
    if config["ENV_NAME"] == "production" and not config.get("TESTING"):
        if not key or key.lower() in KNOWN_WEAK_SECRETS or len(key) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                "SECRET_KEY must be set to a random value of at least 32 characters in production "
                "(e.g. python -c 'import secrets; print(secrets.token_hex(32))'). For a local "
                "install, set DERMALENS_ENV=development instead."
            )
        return
    if key:
        return
    key_file = Path(instance_path) / "secret_key"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    config["SECRET_KEY"] = key_file.read_text().strip()
