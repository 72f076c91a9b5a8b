"""What more than one blueprint needs: audit events from inside a request, the signed-in
owner's analyses (404 for anyone else's), and stored-file and PDF responses.

Blueprints import these from here, never from one another.
"""

import time

from flask import Response, abort, current_app, g, request, session
from flask_login import current_user, login_user

from dermalens import analysis_service, audit, report_service, storage
from dermalens.extensions import db
from dermalens.records import Analysis, User
from dermalens.views import errors


def audit_event(record_id: str | None = None, user=None, **details) -> dict:
    """The `audit.add` fields of an event by the signed-in (or API-token) user unless `user` is
    given, from this request's address."""
    if user is None:
        user = getattr(g, "api_user", None) or (current_user if current_user.is_authenticated else None)
    return dict(user=user, record_id=record_id, remote_address=request.remote_addr, **details)


def log_event(action: str, record_id: str | None = None, user=None, **details) -> None:
    """Append (and commit) an audit event, as `audit_event` describes it."""
    audit.record(db.session, action, **audit_event(record_id, user, **details))


def log_listing(analyses: list[Analysis], page: int, filters, audit_prefix: str = "") -> None:
    """One audit event for a page of analyses shown together: how many, which page and filters."""
    shown = {name: value for name, value in vars(filters).items() if value is not None}
    if not filters.exact_refs:
        del shown["exact_refs"]
    used = ", ".join(f"{name}={value}" for name, value in shown.items())
    log_event("analyses_listed", detail=f"{audit_prefix}{len(analyses)} analyses, page {page}"
                                        + (f"; filters {used}" if used else ""))


def clinic_zone():
    """The clinic's time zone (`DERMALENS_TIME_ZONE`), for dates typed and times shown."""
    return current_app.config["CLINIC_ZONE"]


def start_session(user: User) -> None:
    """Sign the user in on this browser, with the clock of the idle and absolute timeouts."""
    login_user(user)
    session["signed_in_at"] = session["seen_at"] = int(time.time())


def file_store() -> storage.FileStore:
    """Where this app keeps the files of analyses (`storage.FileStore`)."""
    return current_app.extensions["files"]


def owned_analysis_or_404(owner_id: int, public_id: str) -> Analysis:
    """The owner's analysis; 404 for anyone else's (never reveal that it exists)."""
    analysis = analysis_service.get_owned_analysis(db.session, owner_id, public_id)
    if analysis is None:
        abort(404)
    return analysis


def delete_owned_or_404(owner_id: int, public_id: str, **details) -> Response | None:
    """Delete the owner's analysis, audited; 404 if it is not theirs or another request deleted
    it first. Returns None when deleted, or the 503 response when nothing could be deleted."""
    analysis = owned_analysis_or_404(owner_id, public_id)
    try:
        deleted = analysis_service.delete_analysis(db.session, file_store(), analysis,
                                                   audit_event(public_id, **details))
    except analysis_service.DeleteFailed as error:
        current_app.logger.error("Deleting analysis %s failed: its files could not be set aside", public_id)
        return errors.render_error(503, str(error))
    if not deleted:
        abort(404)
    return None


def owned_comparison_or_404(owner_id: int) -> list[Analysis]:
    """The analyses named by the request's `ids`, oldest first; 404 unless all are the owner's.

    :raise analysis_service.InvalidInput: fewer than two or more than MAX_COMPARED ids.
    """
    public_ids = analysis_service.parse_comparison_ids(request.args.getlist("ids"))
    analyses = analysis_service.get_owned_analyses(db.session, owner_id, public_ids)
    if analyses is None:
        abort(404)  # any one not the user's: nothing of the others is shown either
    return analyses


def stored_file_response(analysis: Analysis, which: str, audit_prefix: str = ""):
    """The analysis's stored "image" or "heatmap" overlay, with the media type of its format,
    its download audited; 404 (`storage.FileGone`) if it was deleted meanwhile."""
    name = analysis.image_file if which == "image" else analysis.heatmap_file
    data = file_store().read(name)
    log_event("analysis_downloaded", analysis.public_id, detail=f"{audit_prefix}{which}")
    return Response(data, mimetype=storage.media_type(name))


def requested_paper() -> str:
    """The paper size a PDF request asks for: "letter" with `paper=letter`, else "a4"."""
    return "letter" if request.args.get("paper") == "letter" else "a4"


def comparison_pdf_response(analyses, clinician: str, audit_prefix: str) -> Response:
    """Render the comparison of these (owned, oldest-first) analyses and audit each download."""
    paper = requested_paper()
    document = report_service.render_comparison_pdf(
        analysis_service.compare(analyses, clinic_zone()), clinician, file_store(), paper, clinic_zone())
    for analysis in analyses:
        log_event("analysis_downloaded", analysis.public_id,
                  detail=f"{audit_prefix}comparison PDF ({paper})")
    return pdf_response(document, report_service.comparison_filename(analyses, clinic_zone()))


def report_pdf_response(analysis: Analysis, clinician: str, audit_prefix: str) -> Response:
    """Render the report of this (owned) analysis and audit its download."""
    paper = requested_paper()
    document = report_service.render_pdf(analysis, clinician, file_store(), paper, clinic_zone())
    log_event("analysis_downloaded", analysis.public_id, detail=f"{audit_prefix}PDF report ({paper})")
    return pdf_response(document, report_service.report_filename(analysis, clinic_zone()))


def pdf_response(document: bytes, filename: str) -> Response:
    """A PDF download called `filename` (safe characters only), never cached (it holds patient data)."""
    return Response(document, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    })
