"""Sign in, register, sign out; the session's timeouts."""

import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, logout_user
from sqlalchemy import select

from dermalens import accounts
from dermalens.extensions import config_limit, db, limiter, login_manager, signing_in_account
from dermalens.forms import LoginForm, RegisterForm
from dermalens.records import User
from dermalens.views.helpers import log_event, start_session

bp = Blueprint("auth", __name__)
LOGIN_FAILED = "Invalid username or password."


@login_manager.user_loader
def load_user(session_token: str) -> User | None:
    """The active user whose current session token the cookie holds (`User.get_id`)."""
    if not session_token:
        return None
    user = db.session.scalar(select(User).where(User.session_token == session_token))
    return user if user is not None and user.is_active else None


@bp.before_app_request
def end_expired_session():
    """Sign out a browser idle for SESSION_IDLE_MINUTES or signed in for SESSION_MAX_HOURS."""
    if "_user_id" not in session:
        return None
    now = int(time.time())
    idle = now - session.get("seen_at", 0) > current_app.config["SESSION_IDLE_MINUTES"] * 60
    too_old = now - session.get("signed_in_at", 0) > current_app.config["SESSION_MAX_HOURS"] * 3600
    if idle or too_old:
        logout_user()
        session.clear()
        flash("Your session has ended. Sign in again.", "info")
        if request.path.startswith("/api/"):
            return None  # the API answers by token, not by session
        return redirect(url_for("auth.login", next=request.path if request.method == "GET" else None))
    if now - session["seen_at"] >= 60:  # (rewriting the cookie at most once a minute)
        session["seen_at"] = now
    return None


def is_safe_next(target: str | None) -> bool:
    """True only for a path on this site: "/history", not "//evil.com", "/\\evil.com" or "https:x"."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return False
    if any(ord(ch) < 32 or ch == "\\" for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(config_limit("LOGIN_RATE_LIMIT"), methods=["POST"], key_func=signing_in_account)
@limiter.limit(config_limit("LOGIN_ADDRESS_RATE_LIMIT"), methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("analyses.new"))
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(db.session, form.username.data, form.password.data)
        if user is not None:
            start_session(user)
            log_event("sign_in", user=user)
            target = request.args.get("next")
            return redirect(target if is_safe_next(target) else url_for("analyses.new"))
        log_event("sign_in_failed", username=form.username.data, detail="invalid credentials")
        flash(LOGIN_FAILED, "error")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form)


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(config_limit("LOGIN_ADDRESS_RATE_LIMIT"), methods=["POST"])
def register():
    if current_user.is_authenticated:
        return redirect(url_for("analyses.new"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = accounts.create_user(db.session, form.username.data, form.password.data)
        except accounts.AccountError as error:
            form.username.errors.append(str(error))
        else:
            start_session(user)
            log_event("register", user=user)
            flash("Welcome to DermaLens. Your account is ready.", "success")
            return redirect(url_for("analyses.new"))
    return render_template("auth/register.html", form=form), (400 if form.errors else 200)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Sign out everywhere: every browser signed in to this account (copied cookies included)."""
    log_event("sign_out")
    accounts.end_sessions(db.session, current_user)
    logout_user()
    flash("You are signed out on every device.", "info")
    return redirect(url_for("auth.login"))
