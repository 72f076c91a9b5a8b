"""PDF reports of analyses and of comparisons."""

from flask import Blueprint
from flask_login import current_user, login_required

from dermalens import analysis_service, report_service
from dermalens.extensions import config_limit, limiter
from dermalens.views import errors
from dermalens.views.helpers import (comparison_pdf_response, log_event, owned_analysis_or_404,
                                     owned_comparison_or_404, pdf_response, requested_paper,
                                     upload_folder)

bp = Blueprint("reports", __name__)


@bp.route("/analyses/<public_id>/report.pdf")
@login_required
@limiter.limit(config_limit("PDF_RATE_LIMIT"))
def pdf(public_id: str):
    analysis = owned_analysis_or_404(current_user.id, public_id)
    paper = requested_paper()
    document = report_service.render_pdf(analysis, current_user.username, upload_folder(), paper)
    log_event("analysis_downloaded", analysis.public_id, detail=f"PDF report ({paper})")
    return pdf_response(document, analysis.public_id)


@bp.route("/analyses/compare/report.pdf")
@login_required
@limiter.limit(config_limit("PDF_RATE_LIMIT"))
def comparison_pdf():
    """The comparison of `?ids=...&ids=...` as a PDF to file (A4; `paper=letter` for Letter)."""
    try:
        analyses = owned_comparison_or_404(current_user.id)
    except analysis_service.InvalidInput as error:
        return errors.render_error(error.status, error.message)
    return comparison_pdf_response(analyses, current_user.username, "")
