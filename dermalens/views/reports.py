"""PDF reports of analyses."""

from flask import Blueprint, Response, current_app, request
from flask_login import current_user, login_required

from dermalens import report_service
from dermalens.extensions import config_limit, limiter
from dermalens.views.analyses import owned_analysis_or_404
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


def pdf_response(document: bytes, public_id: str) -> Response:
    return Response(document, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="dermalens-{public_id}.pdf"',
        "Cache-Control": "no-store",
    })
