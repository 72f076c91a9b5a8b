"""New analysis, result page, stored files and deletion."""

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from dermalens import analysis_service, outcomes
from dermalens.extensions import config_limit, db, limiter
from dermalens.forms import AnalysisForm, OutcomeForm
from dermalens.views.helpers import (clinic_zone, delete_owned_or_404, file_store, log_event, owned_analysis_or_404,
                                     owned_comparison_or_404, stored_file_response)

bp = Blueprint("analyses", __name__)


@bp.route("/")
@login_required
def index():
    return redirect(url_for("analyses.new"))


@bp.route("/analyses/new")
@login_required
def new():
    return render_template("analyses/new.html", form=AnalysisForm())


@bp.route("/analyses", methods=["POST"])
@login_required
@limiter.limit(config_limit("ANALYSIS_RATE_LIMIT"))
def create():
    form = AnalysisForm()
    upload = request.files.get("image")
    try:
        analysis_request = analysis_service.parse_request(
            request.form, upload.read() if upload else None, upload.filename if upload else None)
        analysis = analysis_service.create_analysis(
            db.session, current_app.extensions["classifier"], file_store(), current_user.id,
            analysis_request)
    except analysis_service.InvalidInput as error:
        return render_template("analyses/new.html", form=form, error=error, image_kept=sent_by_script()), 400
    log_event("analysis_created", analysis.public_id)
    result = url_for("analyses.show", public_id=analysis.public_id)
    if sent_by_script():
        # The page's script sent the form (for upload progress) and goes to the result itself.
        return "", 201, {"Location": result}
    return redirect(result, code=303)


def sent_by_script() -> bool:
    """The form came from the page's own script, which keeps the chosen image on a refusal."""
    return request.headers.get("X-Requested-With") == "XMLHttpRequest"


@bp.route("/analyses/<public_id>")
@login_required
def show(public_id: str):
    analysis = owned_analysis_or_404(current_user.id, public_id)
    log_event("analysis_viewed", analysis.public_id)
    return _result_page(analysis)


def _result_page(analysis, outcome_error=None):
    form = OutcomeForm(data={"diagnosis": analysis.outcome_diagnosis or "",
                             "source": analysis.outcome_source or "",
                             "date": analysis.outcome_date.isoformat() if analysis.outcome_date else "",
                             "note": analysis.outcome_note or ""}) if outcome_error is None else OutcomeForm()
    return render_template("analyses/show.html", analysis=analysis, outcome_form=form,
                           outcome_error=outcome_error,
                           same_lesion=analysis_service.other_analyses_of_lesion(db.session, analysis))


@bp.route("/analyses/<public_id>/outcome", methods=["POST"])
@login_required
def record_outcome(public_id: str):
    """Record (or correct) what the lesion turned out to be."""
    analysis = owned_analysis_or_404(current_user.id, public_id)
    try:
        outcome = outcomes.parse_outcome(request.form)
    except analysis_service.InvalidInput as error:
        return _result_page(analysis, outcome_error=error), 400
    outcomes.record_outcome(analysis, outcome)
    log_event("outcome_recorded", analysis.public_id, detail=outcome.diagnosis)
    flash("The outcome was recorded.", "success")
    return redirect(url_for("analyses.show", public_id=public_id, _anchor="outcome"), code=303)


@bp.route("/analyses/compare")
@login_required
def compare():
    """Two to four of the user's analyses side by side, oldest first (`?ids=...&ids=...`)."""
    try:
        analyses = owned_comparison_or_404(current_user.id)
    except analysis_service.InvalidInput as error:
        return render_template("analyses/compare.html", error=error), 400
    for analysis in analyses:
        log_event("analysis_viewed", analysis.public_id, detail="compared")
    return render_template("analyses/compare.html", comparison=analysis_service.compare(analyses, clinic_zone()),
                           caution=analysis_service.COMPARISON_CAUTION)


@bp.route("/analyses/<public_id>/image")
@login_required
def image(public_id: str):
    return stored_file_response(owned_analysis_or_404(current_user.id, public_id), "image")


@bp.route("/analyses/<public_id>/heatmap")
@login_required
def heatmap(public_id: str):
    return stored_file_response(owned_analysis_or_404(current_user.id, public_id), "heatmap")


@bp.route("/analyses/<public_id>/confirm-delete")
@login_required
def confirm_delete(public_id: str):
    """Asks for confirmation (a page, so it works without JavaScript); changes nothing."""
    return render_template("analyses/delete.html", analysis=owned_analysis_or_404(current_user.id, public_id))


@bp.route("/analyses/<public_id>/delete", methods=["POST"])
@login_required
def delete(public_id: str):
    failed = delete_owned_or_404(current_user.id, public_id)
    if failed:
        return failed
    flash("The analysis, its image and its heatmap were deleted.", "success")
    return redirect(url_for("history.index"), code=303)
