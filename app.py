"""WSGI entry point: `gunicorn app:app` (see gunicorn.conf.py) or `flask --app app run`."""

from dermalens import create_app

app = create_app()
