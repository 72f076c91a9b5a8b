"""The application factory: configuration, extensions, database, classifier, blueprints."""

import os
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from dermalens import clock
from dermalens import config as settings
from dermalens.config import PROJECT_ROOT, ConfigurationError
from dermalens.storage import LocalFolder


def create_app(test_config: dict | None = None, instance_path: str | None = None) -> Flask:
    """Build the app: configuration, extensions, database, classifier, blueprints.

    `test_config` overrides settings; its optional "CLASSIFIER" entry injects a classifier
    object instead of loading the Keras model named by the model card.

    :raise ConfigurationError: production without a real SECRET_KEY, an unwritable instance
        folder or an unknown time zone.
    :raise inference.ModelLoadError: model weights missing or not matching the model card.
    """
    app = Flask(__name__, instance_path=instance_path or settings.instance_path(),
                instance_relative_config=True,
                template_folder=str(PROJECT_ROOT / "templates"),
                static_folder=str(PROJECT_ROOT / "static"))
    app.config.update(settings.from_environment(app.instance_path))
    test_config = dict(test_config or {})
    classifier = test_config.pop("CLASSIFIER", None)
    app.config.update(test_config)
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS",
                          settings.database_engine_options(app.config["SQLALCHEMY_DATABASE_URI"]))
    _ensure_writable(Path(app.instance_path), Path(app.config["UPLOAD_FOLDER"]))
    settings.ensure_secret_key(app.config, app.instance_path)
    try:
        app.config["CLINIC_ZONE"] = clock.zone(app.config["TIME_ZONE"])
    except ValueError as error:
        raise ConfigurationError(f"DERMALENS_TIME_ZONE: {error}") from None

    proxy_hops = settings.proxy_hops()
    if proxy_hops:
        # Trust exactly this many proxies in front of us (e.g. 1 on Render), never more, so a
        # client cannot choose its own address for rate limiting and the audit trail.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxy_hops, x_proto=proxy_hops)

    _configure_logging(app)
    register_extensions(app)
    app.extensions["classifier"] = classifier or _load_classifier(app.config["MODEL_CARD"])
    app.extensions["files"] = LocalFolder(app.config["UPLOAD_FOLDER"])
    register_blueprints(app)
    register_schema_guard(app)
    register_errorhandlers(app)
    register_commands(app)
    register_template_context(app)
    return app


def _configure_logging(app: Flask) -> None:
    """Send the app's own INFO logs (e.g. analysis timings) to stderr, where gunicorn collects them."""
    import logging

    logger = logging.getLogger("dermalens")
    if not logger.handlers and not app.testing:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _ensure_writable(*folders: Path) -> None:
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigurationError(f"Cannot create the data folder {folder}: {error}") from error
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigurationError(f"The data folder {folder} is not writable by this process.")


def _load_classifier(card_path: str):
    from dermalens.inference import KerasClassifier

    return KerasClassifier(card_path)


def register_extensions(app: Flask) -> None:
    from dermalens.database import MIGRATIONS, configure_connections
    from dermalens.extensions import csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    with app.app_context():
        configure_connections(db.engine)


def register_blueprints(app: Flask) -> None:
    from dermalens.views import account, analyses, api, auth, history, performance, reports

    for blueprint in (auth.bp, analyses.bp, history.bp, reports.bp, performance.bp, account.bp, api.bp):
        app.register_blueprint(blueprint)
    # Browsers and bookmarks ask for /favicon.ico whatever the page links to.
    app.add_url_rule("/favicon.ico", "favicon", lambda: app.send_static_file("favicon.svg"))


def register_schema_guard(app: Flask) -> None:
    """Until the database is at this release's schema, every request but the health check (which
    says why) gets a 503 naming the upgrade command; checked again on each request, so an upgrade
    made meanwhile needs no restart."""
    from flask import request

    from dermalens.database import schema_problem
    from dermalens.extensions import db
    from dermalens.views import errors

    ready = []

    @app.before_request
    def require_current_schema():
        if ready or request.endpoint in ("static", "favicon", "api.health"):
            return None
        problem = schema_problem(db.engine)
        if problem is None:
            ready.append(True)
            return None
        app.logger.error(problem)
        return errors.render_error(503, "DermaLens is being upgraded and cannot answer yet; tell the "
                                        f"operator if this lasts. ({problem})")


def register_errorhandlers(app: Flask) -> None:
    from dermalens.views import errors, security

    errors.register(app)
    security.register(app)


def register_commands(app: Flask) -> None:
    from dermalens import commands

    commands.register(app)


def register_template_context(app: Flask) -> None:
    from dermalens.explanation import HEATMAP_NAME
    from dermalens.lesions import BODY_SITE_LABELS, CLASS_GROUPS, CLASS_NAMES, MODEL_LIMITS, SEXES
    from dermalens.outcomes import OUTCOME_DIAGNOSES, OUTCOME_SOURCES
    from dermalens.risk import CURRENT_CATEGORIES, RISK_CATEGORIES

    @app.context_processor
    def product_vocabulary():
        return {"CLASS_NAMES": CLASS_NAMES, "CLASS_GROUPS": CLASS_GROUPS,
                "BODY_SITE_LABELS": BODY_SITE_LABELS, "SEXES": SEXES,
                "RISK_CATEGORIES": RISK_CATEGORIES, "CURRENT_CATEGORIES": CURRENT_CATEGORIES,
                "OUTCOME_DIAGNOSES": OUTCOME_DIAGNOSES, "OUTCOME_SOURCES": OUTCOME_SOURCES,
                "MODEL_LIMITS": MODEL_LIMITS, "HEATMAP_NAME": HEATMAP_NAME,
                "model_info": app.extensions["classifier"].info, "TIME_ZONE": app.config["TIME_ZONE"]}

    @app.template_filter("local_time")
    def local_time(moment):
        """A stored UTC time as the clinic reads it (`clock.display`)."""
        return clock.display(moment, app.config["CLINIC_ZONE"])
