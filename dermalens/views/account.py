"""The account page: personal API tokens (create, list, revoke) and the user's audit trail."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from dermalens import audit, tokens
from dermalens.extensions import db
from dermalens.views.helpers import log_event

bp = Blueprint("account", __name__)


@bp.route("/account")
@login_required
def index():
    return render_account()


def render_account(**extra):
    return render_template("account/index.html", tokens=tokens.list_tokens(db.session, current_user.id),
                           events=audit.events_for_user(db.session, current_user.id),
                           actions=audit.ACTIONS, **extra)


@bp.route("/account/tokens", methods=["POST"])
@login_required
def create_token():
    try:
        record, token = tokens.issue_token(db.session, current_user, request.form.get("name", ""))
    except tokens.TokenError as error:
        flash(str(error), "error")
        return render_account(), 400
    log_event("token_created", record.public_id, detail=record.name)
    # Rendered (not redirected) so the token is shown exactly once and never stored.
    return render_account(new_token=token, new_token_name=record.name), 201


@bp.route("/account/tokens/<public_id>/revoke", methods=["POST"])
@login_required
def revoke_token(public_id: str):
    if not tokens.revoke_token(db.session, current_user.id, public_id):
        abort(404)
    log_event("token_revoked", public_id)
    flash("The token was revoked. Systems using it can no longer connect.", "success")
    return redirect(url_for("account.index"), code=303)
