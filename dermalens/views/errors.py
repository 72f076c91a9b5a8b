"""Error pages in the site's design (JSON for the API), never a stack trace."""

import errno

from flask import Flask, Response, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from dermalens import storage

MESSAGES = {
    400: "The request could not be understood. Please go back and try again.",
    404: "There is nothing here. The analysis may have been deleted, or the address is wrong.",
    405: "That action is not allowed on this address.",
    413: "The upload is too large.",
    429: "Too many attempts in a short time. Please wait a minute and try again.",
    500: "Something went wrong on our side. Nothing was saved; please try again.",
}


DISK_PROBLEM = ("The server cannot save anything just now: its disk is full or read-only. Nothing "
                "was changed. Please tell the operator (GET /api/health says what is wrong).")
_FULL_OR_READ_ONLY_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT}


def is_full_or_read_only(error: Exception) -> bool:
    """True for the errors of a full or read-only disk, from the database or the file system."""
    if isinstance(error, OperationalError):
        message = str(error.orig).lower()
        return "disk is full" in message or "readonly database" in message or "disk i/o error" in message
    return isinstance(error, OSError) and error.errno in _FULL_OR_READ_ONLY_ERRNOS


def wants_json() -> bool:
    return request.path.startswith("/api/")


def render_error(status: int, message: str | None = None) -> Response:
    """The error as a response: JSON under /api/, the site's error page elsewhere."""
    message = message or MESSAGES.get(status, "The request failed.")
    if wants_json():
        response = jsonify(error={"code": status, "message": message})
    else:
        response = make_response(render_template("errors/error.html", status=status, message=message))
    response.status_code = status
    return response


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException):
        message = MESSAGES.get(error.code)
        if error.code == 413:
            limit_mb = app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
            message = f"The upload is too large: the limit is {limit_mb} MB per image."
        elif isinstance(error, CSRFError):
            message = "Your form expired or was sent from elsewhere. Reload the page and try again."
        response = render_error(error.code or 500, message)
        if getattr(error, "valid_methods", None):
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(storage.FileGone)
    def handle_file_gone(error: storage.FileGone):
        # The analysis was deleted while this request was reading it.
        return render_error(404)

    @app.errorhandler(OperationalError)
    @app.errorhandler(OSError)
    def handle_storage_error(error: Exception):
        if not is_full_or_read_only(error):
            return handle_unexpected_error(error)
        app.logger.error("Cannot write on %s %s: %s", request.method, request.path, error)
        return render_error(503, DISK_PROBLEM)

    @app.errorhandler(Exception)
    def handle_unexpected_error(error: Exception):
        app.logger.exception("Unhandled error on %s %s", request.method, request.path)
        return render_error(InternalServerError.code)
