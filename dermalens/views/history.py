"""The clinician's own analyses: newest first, paginated, filterable."""

from flask import Blueprint, current_app, render_template, request
from flask_login import current_user, login_required

from dermalens import analysis_service
from dermalens.extensions import db
from dermalens.views.helpers import clinic_zone, log_listing

bp = Blueprint("history", __name__)


@bp.route("/history")
@login_required
def index():
    page_size = current_app.config["HISTORY_PAGE_SIZE"]
    error, page = None, 1
    try:
        page = analysis_service.parse_paging({"page": request.args.get("page")}, page_size)[0]
        filters = analysis_service.parse_history_filters(request.args)
    except analysis_service.InvalidInput as invalid:
        error, filters = invalid, analysis_service.HistoryFilters()
    analyses, total = analysis_service.list_analyses(db.session, current_user.id, filters, page,
                                                     page_size, clinic_zone())
    log_listing(analyses, page, filters)
    pages = max(1, -(-total // page_size))
    # A page past the last (an old bookmark, an edited URL) says so, rather than "no analyses".
    beyond = total > 0 and page > pages
    # Links to other pages keep the filters but not the page number.
    filter_args = {key: value for key, value in request.args.items() if key != "page" and value}
    status = 400 if error else 404 if beyond else 200
    return render_template("history/index.html", analyses=analyses, total=total,
                           page=max(1, page), pages=pages, beyond=beyond, filters=filters,
                           filter_args=filter_args, error=error,
                           max_compared=analysis_service.MAX_COMPARED), status
