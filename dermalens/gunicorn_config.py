"""Gunicorn settings for DermaLens: `gunicorn -c python:dermalens.gunicorn_config app:app`
(used by `make run`, render.yaml, the benchmark and the browser tests).

One worker with several threads by default: TensorFlow releases the GIL and uses both cores of a
small server from one process, the model is held in memory once, and in-memory rate limits are
exact. For more workers, set WEB_CONCURRENCY and a shared RATELIMIT_STORAGE_URI (e.g. redis://).
"""

from dermalens.config import gunicorn_settings

_settings = gunicorn_settings()
bind = _settings["bind"]
workers = _settings["workers"]
threads = _settings["threads"]
# Loading TensorFlow and the model takes a few seconds; a slow first boot must not be killed.
timeout = _settings["timeout"]
graceful_timeout = 30
# Never preload: TensorFlow must be initialised inside each worker, not forked from the master.
preload_app = False
accesslog = "-"
# The path without its query string (%(U)s, not %(r)s) and no referrer: history and API filters
# carry patient references, which must not reach the access log.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s" %(L)s'
errorlog = "-"
