"""PDF reports of analyses and of comparisons."""

from flask import Blueprint
from flask_login import current_user, login_required

from dermalens import analysis_service
from dermalens.extensions import config_limit, limiter
from dermalens.views import errors
from dermalens.views.helpers import (comparison_pdf_response, owned_analysis_or_404, owned_comparison_or_404,
                                     report_pdf_response)

bp = Blueprint("reports", __name__)


@bp.route("/analyses/<public_id>/report.pdf")
@login_required
@limiter.limit(config_limit("PDF_RATE_LIMIT"))
def pdf(public_id: str):
    return report_pdf_response(owned_analysis_or_404(current_user.id, public_id), current_user.username, "")


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
