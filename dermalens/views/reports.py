"""PDF reports of analyses and of comparisons."""

from flask import Blueprint, Response, current_app, request
from flask_login import current_user, login_required

from dermalens import analysis_service, report_service
from dermalens.extensions import config_limit, limiter
from dermalens.views import errors
from dermalens.views.analyses import owned_analysis_or_404, owned_comparison_or_404
from dermalens.views.auditing import log_event

bp = Blueprint("reports", __name__)


@bp.route("/analyses/<public_id>/report.pdf")
@login_required
@limiter.limit(config_limit("PDF_RATE_LIMIT"))
def pdf(public_id: str):
    analysis = owned_analysis_or_404(public_id)
    paper = "letter" if request.args.get("paper") == "letter" else "a4"
    document = report_service.render_pdf(analysis, current_user.username,
                                         current_app.config["UPLOAD_FOLDER"], paper)
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


def comparison_pdf_response(analyses, clinician: str, audit_prefix: str) -> Response:
    """Render the comparison of these (owned, oldest-first) analyses and audit each download."""
    paper = "letter" if request.args.get("paper") == "letter" else "a4"
    document = report_service.render_comparison_pdf(
        analysis_service.compare(analyses), clinician, current_app.config["UPLOAD_FOLDER"], paper)
    for analysis in analyses:
        log_event("analysis_downloaded", analysis.public_id,
                  detail=f"{audit_prefix}comparison PDF ({paper})")
    return pdf_response(document, f"comparison-{analyses[-1].public_id}")


def pdf_response(document: bytes, name: str) -> Response:
    """A PDF download named dermalens-<name>.pdf, never cached (it holds patient data)."""
    return Response(document, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="dermalens-{name}.pdf"',
        "Cache-Control": "no-store",
    })
