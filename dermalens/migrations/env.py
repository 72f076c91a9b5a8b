"""Alembic's environment for DermaLens: the app's engine and models, via Flask-Migrate.

Migrations run inside the app (`flask --app app db upgrade`), so they use exactly the database
the app is configured with. `render_as_batch` lets later migrations alter SQLite tables (which
ALTER TABLE alone cannot); `compare_type` makes autogenerate notice changed column types.
"""

from alembic import context
from flask import current_app


def target_metadata():
    return current_app.extensions["migrate"].db.metadata


def run_migrations_offline():
    context.configure(url=current_app.config["SQLALCHEMY_DATABASE_URI"], target_metadata=target_metadata(),
                      literal_binds=True, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    engine = current_app.extensions["migrate"].db.engine
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata(),
                          render_as_batch=True, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
