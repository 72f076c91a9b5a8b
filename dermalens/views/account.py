"""The account page: personal API tokens (create, list, revoke)."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from dermalens import tokens
from dermalens.extensions import db

bp = Blueprint("account", __name__)


@bp.route("/account")
@login_required
def index():
    return render_template("account/index.html", tokens=tokens.list_tokens(db.session, current_user.id))


@bp.route("/account/tokens", methods=["POST"])
@login_required
def create_token():
    try:
        record, token = tokens.issue_token(db.session, current_user, request.form.get("name", ""))
    except tokens.TokenError as error:
        flash(str(error), "error")
        return render_template("account/index.html",
                               tokens=tokens.list_tokens(db.session, current_user.id)), 400
    # Rendered (not redirected) so the token is shown exactly once and never stored.
    return render_template("account/index.html", new_token=token, new_token_name=record.name,
                           tokens=tokens.list_tokens(db.session, current_user.id)), 201


@bp.route("/account/tokens/<public_id>/revoke", methods=["POST"])
@login_required
def revoke_token(public_id: str):
    if not tokens.revoke_token(db.session, current_user.id, public_id):
        abort(404)
    flash("The token was revoked. Systems using it can no longer connect.", "success")
    return redirect(url_for("account.index"), code=303)
