"""Site performance: how the tool has done on the signed-in clinician's own recorded outcomes."""

from flask import Blueprint, current_app, render_template
from flask_login import current_user, login_required

from dermalens import outcomes
from dermalens.extensions import db
from dermalens.views.helpers import log_event

bp = Blueprint("performance", __name__)


@bp.route("/site-performance")
@login_required
def index():
    performance, used = outcomes.owner_performance(db.session, current_user.id)
    log_event("site_performance_viewed", detail=f"{used} analyses with outcomes")
    card = outcomes.card_performance(current_app.extensions["classifier"].info.card)
    return render_template("performance/index.html", performance=performance, card=card)
