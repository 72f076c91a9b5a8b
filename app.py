"""WSGI entry point: `gunicorn -c python:dermalens.gunicorn_config app:app` or `flask --app app run`."""

from dermalens import create_app

app = create_app()
