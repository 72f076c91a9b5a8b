"""Sign in, register, sign out."""

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from dermalens import accounts
from dermalens.extensions import config_limit, db, limiter, login_manager
from dermalens.forms import LoginForm, RegisterForm
from dermalens.records import User
from dermalens.views.helpers import log_event

bp = Blueprint("auth", __name__)
LOGIN_FAILED = "Invalid username or password."


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id)) if user_id.isdigit() else None


def is_safe_next(target: str | None) -> bool:
    """True only for a path on this site: "/history", not "//evil.com", "/\\evil.com" or "https:x"."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return False
    if any(ord(ch) < 32 or ch == "\\" for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(config_limit("LOGIN_RATE_LIMIT"), methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("analyses.new"))
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(db.session, form.username.data, form.password.data)
        if user is not None:
            login_user(user)
            log_event("sign_in", user=user)
            target = request.args.get("next")
            return redirect(target if is_safe_next(target) else url_for("analyses.new"))
        log_event("sign_in_failed", username=form.username.data, detail="invalid credentials")
        flash(LOGIN_FAILED, "error")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form)


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(config_limit("LOGIN_RATE_LIMIT"), methods=["POST"])
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
            login_user(user)
            log_event("register", user=user)
            flash("Welcome to DermaLens. Your account is ready.", "success")
            return redirect(url_for("analyses.new"))
    return render_template("auth/register.html", form=form), (400 if form.errors else 200)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    log_event("sign_out")
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
