"""DermaLens: decision support for dermoscopic skin-lesion triage (a Flask application).

`create_app` (in `dermalens.factory`) is imported on first use, so that the framework-free
modules (the image pipeline, inference, assessment) and the training tools import without Flask.
"""

from dermalens.config import ConfigurationError

__all__ = ["create_app", "ConfigurationError"]


def __getattr__(name: str):
    if name == "create_app":
        from dermalens.factory import create_app

        return create_app
    raise AttributeError(f"module 'dermalens' has no attribute {name!r}")
