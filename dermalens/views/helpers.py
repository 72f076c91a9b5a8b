"""What more than one blueprint needs: audit events from inside a request, the signed-in
owner's analyses (404 for anyone else's), and stored-file and PDF responses.

Blueprints import these from here, never from one another.
"""

from flask import Response, abort, current_app, g, request, send_file
from flask_login import current_user

from dermalens import analysis_service, audit, report_service, storage
from dermalens.extensions import db
from dermalens.records import Analysis


def log_event(action: str, record_id: str | None = None, user=None, **details) -> None:
    """Append an audit event for the signed-in (or API-token) user unless `user` is given."""
    if user is None:
        user = getattr(g, "api_user", None) or (current_user if current_user.is_authenticated else None)
    audit.record(db.session, action, user=user, record_id=record_id,
                 remote_address=request.remote_addr, **details)


def upload_folder() -> str:
    return current_app.config["UPLOAD_FOLDER"]


def owned_analysis_or_404(owner_id: int, public_id: str) -> Analysis:
    """The owner's analysis; 404 for anyone else's (never reveal that it exists)."""
    analysis = analysis_service.get_owned_analysis(db.session, owner_id, public_id)
    if analysis is None:
        abort(404)
    return analysis


def owned_comparison_or_404(owner_id: int) -> list[Analysis]:
    """The analyses named by the request's `ids`, oldest first; 404 unless all are the owner's.

    :raise analysis_service.InvalidInput: fewer than two or more than MAX_COMPARED ids.
    """
    public_ids = analysis_service.parse_comparison_ids(request.args.getlist("ids"))
    analyses = analysis_service.get_owned_analyses(db.session, owner_id, public_ids)
    if analyses is None:
        abort(404)  # any one not the user's: nothing of the others is shown either
    return analyses


def stored_file_response(name: str):
    """A stored image or heatmap overlay, with the media type of its format."""
    return send_file(storage.stored_path(upload_folder(), name), mimetype=storage.media_type(name))


def requested_paper() -> str:
    """The paper size a PDF request asks for: "letter" with `paper=letter`, else "a4"."""
    return "letter" if request.args.get("paper") == "letter" else "a4"


def comparison_pdf_response(analyses, clinician: str, audit_prefix: str) -> Response:
    """Render the comparison of these (owned, oldest-first) analyses and audit each download."""
    paper = requested_paper()
    document = report_service.render_comparison_pdf(
        analysis_service.compare(analyses), clinician, upload_folder(), paper)
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
