"""The account page: password, personal API tokens (create, list, revoke) and the user's audit trail."""

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required

from dermalens import accounts, audit, tokens
from dermalens.extensions import config_limit, db, limiter, signing_in_account
from dermalens.forms import MIN_PASSWORD_LENGTH, ChangePasswordForm
from dermalens.views.helpers import log_event, start_session

bp = Blueprint("account", __name__)


@bp.route("/account")
@login_required
def index():
    # A token just created is shown on this page once: taken out of the session as it is shown,
    # so a reload shows (and creates) nothing more.
    created = session.pop("new_token", None)
    return render_account(new_token=created and created["token"], new_token_name=created and created["name"])


def render_account(**extra):
    return render_template("account/index.html", tokens=tokens.list_tokens(db.session, current_user.id),
                           events=audit.events_for_user(db.session, current_user.id),
                           actions=audit.ACTIONS, min_password_length=MIN_PASSWORD_LENGTH, **extra)


@bp.route("/account/password", methods=["POST"])
@login_required
@limiter.limit(config_limit("LOGIN_RATE_LIMIT"), key_func=signing_in_account)
def change_password():
    """New password; every other session of the account ends, this one goes on."""
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        message = next(iter(error for errors in form.errors.values() for error in errors))
        return render_account(password_error=message), 400
    user = current_user._get_current_object()  # (the user itself: signed in again below)
    try:
        accounts.change_password(db.session, user, form.current.data, form.password.data)
    except accounts.AccountError as error:
        return render_account(password_error=str(error)), 400
    start_session(user)
    log_event("password_changed")
    flash("Your password was changed. Other devices were signed out.", "success")
    return redirect(url_for("account.index"), code=303)


@bp.route("/account/tokens", methods=["POST"])
@login_required
def create_token():
    try:
        record, token = tokens.issue_token(db.session, current_user, request.form.get("name", ""))
    except tokens.TokenError as error:
        flash(str(error), "error")
        return render_account(), 400
    log_event("token_created", record.public_id, detail=record.name)
    # Post/redirect/get: reloading the page that shows the token must not post the form again.
    # The token rides in the (signed) session cookie for this one redirect; the database keeps
    # only its hash.
    session["new_token"] = {"token": token, "name": record.name}
    return redirect(url_for("account.index", _anchor="tokens-heading"), code=303)


@bp.route("/account/tokens/<public_id>/confirm-revoke")
@login_required
def confirm_revoke(public_id: str):
    """Asks before revoking (a page, so it works without JavaScript); changes nothing."""
    record = tokens.get_token(db.session, current_user.id, public_id)
    if record is None or not record.active:
        abort(404)
    return render_template("account/revoke.html", token=record)


@bp.route("/account/tokens/<public_id>/revoke", methods=["POST"])
@login_required
def revoke_token(public_id: str):
    if not tokens.revoke_token(db.session, current_user.id, public_id):
        abort(404)
    log_event("token_revoked", public_id)
    flash("The token was revoked. Systems using it can no longer connect.", "success")
    return redirect(url_for("account.index"), code=303)
