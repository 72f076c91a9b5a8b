"""JSON API (`/api/...`): the same analyses as the web pages, for other clinical systems.

Authentication is a personal token in `Authorization: Bearer <token>`. These routes are exempt
from CSRF on purpose: they never read the session cookie, so a browser cannot be tricked into
sending credentials with a forged request.
"""

from functools import wraps
from pathlib import Path

from flask import Blueprint, current_app, g, jsonify, request, url_for
from sqlalchemy import text

from dermalens import analysis_service, outcomes, storage, tokens
from dermalens.extensions import config_limit, csrf, db, limiter
from dermalens.lesions import CLASS_GROUPS, CLASS_NAMES, CLASSES, MALIGNANT_CLASSES
from dermalens.database import schema_problem
from dermalens.openapi import openapi_document
from dermalens.records import Analysis
from dermalens.risk import RISK_CATEGORIES
from dermalens.views import errors
from dermalens.views.helpers import (clinic_zone, comparison_pdf_response, delete_owned_or_404,
                                     log_event, log_listing, owned_analysis_or_404, owned_comparison_or_404,
                                     file_store, report_pdf_response, stored_file_response)

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)

DISCLAIMER = "Decision support for qualified clinicians; not a diagnosis and not a medical device."
DEFAULT_PAGE_SIZE = 20


def token_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        user = tokens.user_for_token(db.session, token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            response = errors.render_error(401, "A valid API token is required "
                                                "(Authorization: Bearer <token>).")
            response.headers["WWW-Authenticate"] = 'Bearer realm="dermalens"'
            return response
        g.api_user = user
        return view(*args, **kwargs)

    return wrapper


def analysis_json(analysis: Analysis) -> dict:
    """An analysis as the API shows it: a declined image carries no class, ranking or malignant
    probability, only what the network computed anyway as `unreliable_probabilities`."""
    risk = RISK_CATEGORIES[analysis.risk_category]
    ids = {"public_id": analysis.public_id, "_external": True}
    declined = analysis.declined
    return {
        "id": analysis.public_id,
        "created_at": analysis.created_at.isoformat(timespec="seconds") + "Z",
        "inputs": {"patient_ref": analysis.patient_ref, "lesion_ref": analysis.lesion_ref,
                   "age": analysis.age, "sex": analysis.sex, "site": analysis.site,
                   "note": analysis.note, "original_filename": analysis.original_filename},
        "probabilities": None if declined else analysis.probabilities,
        "unreliable_probabilities": analysis.probabilities if declined else None,
        "ranked": [] if declined else [{"class": code, "name": CLASS_NAMES[code], "probability": probability}
                                       for code, probability in analysis.ranked_classes],
        "top_class": None if declined else analysis.top_class,
        "malignant_probability": None if declined else analysis.malignant_probability,
        "risk": {"category": risk.code, "label": risk.label, "action": risk.action, "refers": risk.refers},
        "indeterminate": declined,
        "indeterminate_reasons": analysis.indeterminate_reasons,
        "uncertain": bool(analysis.uncertainty_reasons),
        "uncertainty_reasons": analysis.uncertainty_reasons,
        "outcome": outcomes.outcome_json(analysis),
        "notices": analysis.notices,
        "heatmap_class": None if declined else analysis.heatmap_class,
        "image_size": {"width": analysis.image_width, "height": analysis.image_height},
        "model": {"name": analysis.model_name, "version": analysis.model_version,
                  "sha256": analysis.model_sha256},
        "urls": {"self": url_for("api.analysis", **ids), "image": url_for("api.image", **ids),
                 "heatmap": url_for("api.heatmap", **ids), "report": url_for("api.report", **ids)},
        "disclaimer": DISCLAIMER,
    }


@bp.get("/health")
def health():
    """ok (200) only if the model is loaded, the database answers and both the database's and the
    uploads' disks take a write; else degraded (503) with `problems` saying what is wrong."""
    classifier = current_app.extensions.get("classifier")
    schema = None
    try:
        db.session.execute(text("SELECT 1"))
        database = True
        schema = schema_problem(db.engine)
    except Exception:  # noqa: BLE001 - any failure means "not reachable"; details stay in the log
        current_app.logger.exception("database health check failed")
        database = False
    storage_writable, storage_free_mb = file_store().writable()
    database_file = db.engine.url.database if db.engine.dialect.name == "sqlite" else None
    database_writable, database_free_mb = (storage.writable(Path(database_file).parent)
                                           if database_file else (database, None))
    problems = [message for failed, message in (
        (classifier is None, "The model is not loaded."),
        (not database, "The database does not answer."),
        (schema is not None, schema),
        (not database_writable, "The database's disk cannot be written (full or read-only): "
                                "nothing can be saved, signed in or audited."),
        (not storage_writable, "The uploads folder cannot be written (disk full or read-only): "
                               "no analysis can be stored or deleted."),
    ) if failed]
    body = {"status": "degraded" if problems else "ok", "problems": problems,
            "model_loaded": classifier is not None,
            "model_version": classifier.info.version if classifier else None,
            "schema_current": database and schema is None,
            "device": getattr(classifier, "device", "CPU"), "database": database,
            "database_writable": database_writable, "database_free_mb": database_free_mb,
            "storage_writable": storage_writable, "storage_free_mb": storage_free_mb}
    return jsonify(body), 503 if problems else 200


@bp.get("/info")
def info():
    model = current_app.extensions["classifier"].info
    validation = model.card.get("validation", {})
    return jsonify({
        "classes": [{"code": code, "name": CLASS_NAMES[code], "group": CLASS_GROUPS[code],
                     "malignant": code in MALIGNANT_CLASSES} for code in CLASSES],
        "input_size": model.input_size,
        "thresholds": model.thresholds,
        "threshold_rules": model.card.get("threshold_rules", {}),
        "risk_categories": [{"category": c.code, "label": c.label, "action": c.action, "refers": c.refers}
                            for c in RISK_CATEGORIES.values()],
        "model": {"name": model.name, "version": model.version, "sha256": model.sha256,
                  "architecture": model.card.get("architecture"),
                  "validation": {key: validation.get(key) for key in
                                 ("balanced_accuracy", "auc_malignant", "auc_melanoma", "ece")},
                  "training_data": "HAM10000 (CC BY-NC 4.0)"},
        "disclaimer": DISCLAIMER,
    })


@bp.get("/v1/openapi.json")
def openapi():
    return jsonify(openapi_document())


@bp.post("/v1/analyses")
@token_required
@limiter.limit(config_limit("ANALYSIS_RATE_LIMIT"))
def create_analysis():
    upload = request.files.get("image")
    try:
        analysis_request = analysis_service.parse_request(
            request.form, upload.read() if upload else None, upload.filename if upload else None)
        analysis = analysis_service.create_analysis(
            db.session, current_app.extensions["classifier"], file_store(), g.api_user.id,
            analysis_request)
    except analysis_service.InvalidInput as error:
        return errors.render_error(error.status, error.message)
    log_event("analysis_created", analysis.public_id, detail="API")
    response = jsonify(analysis_json(analysis))
    response.status_code = 201
    response.headers["Location"] = url_for("api.analysis", public_id=analysis.public_id)
    return response


@bp.get("/v1/analyses")
@token_required
def list_analyses():
    try:
        page, page_size = analysis_service.parse_paging(request.args, DEFAULT_PAGE_SIZE)
        filters = analysis_service.parse_history_filters(request.args)
    except analysis_service.InvalidInput as error:
        return errors.render_error(400, error.message)
    items, total = analysis_service.list_analyses(db.session, g.api_user.id, filters, page, page_size,
                                                 clinic_zone())
    log_listing(items, page, filters, "API ")
    return jsonify({"items": [analysis_json(item) for item in items], "page": page,
                    "per_page": page_size, "total": total, "pages": max(1, -(-total // page_size))})


@bp.get("/v1/analyses/compare")
@token_required
def compare():
    """Two to four of the user's analyses (`?ids=...&ids=...`), oldest first, as the web
    comparison shows them: the analyses, the cautions, and the change in malignant probability."""
    try:
        analyses = owned_comparison_or_404(g.api_user.id)
    except analysis_service.InvalidInput as error:
        return errors.render_error(error.status, error.message)
    for item in analyses:
        log_event("analysis_viewed", item.public_id, detail="API compared")
    comparison = analysis_service.compare(analyses, clinic_zone())
    return jsonify({"items": [analysis_json(item) for item in comparison.analyses],
                    "cautions": comparison.cautions,
                    "malignant_change_points": comparison.malignant_change,
                    "disclaimer": DISCLAIMER})


@bp.get("/v1/analyses/compare/report.pdf")
@token_required
@limiter.limit(config_limit("PDF_RATE_LIMIT"))
def comparison_report():
    try:
        analyses = owned_comparison_or_404(g.api_user.id)
    except analysis_service.InvalidInput as error:
        return errors.render_error(error.status, error.message)
    return comparison_pdf_response(analyses, g.api_user.username, "API ")


@bp.get("/v1/analyses/<public_id>")
@token_required
def analysis(public_id):
    found = owned_analysis_or_404(g.api_user.id, public_id)
    log_event("analysis_viewed", found.public_id, detail="API")
    return jsonify(analysis_json(found))


@bp.delete("/v1/analyses/<public_id>")
@token_required
def delete_analysis(public_id):
    return delete_owned_or_404(g.api_user.id, public_id, detail="API") or ("", 204)


@bp.get("/v1/analyses/<public_id>/outcome")
@token_required
def outcome(public_id):
    found = owned_analysis_or_404(g.api_user.id, public_id)
    log_event("analysis_viewed", found.public_id, detail="API outcome")
    return jsonify({"outcome": outcomes.outcome_json(found)})


@bp.put("/v1/analyses/<public_id>/outcome")
@token_required
def record_outcome(public_id):
    """Record or correct the outcome, from JSON or form fields; 422 (nothing changed) on bad input."""
    found = owned_analysis_or_404(g.api_user.id, public_id)
    fields = request.get_json(silent=True) if request.is_json else request.form
    if not hasattr(fields, "get"):  # (a JSON list or number, or no JSON at all)
        return errors.render_error(422, "Send the outcome as a JSON object or as form fields.")
    try:
        parsed = outcomes.parse_outcome(fields)
    except analysis_service.InvalidInput as error:
        return errors.render_error(422, error.message)
    outcomes.record_outcome(found, parsed)
    log_event("outcome_recorded", found.public_id, detail=f"API {parsed.diagnosis}")
    return jsonify({"outcome": outcomes.outcome_json(found)})


@bp.get("/v1/site-performance")
@token_required
def site_performance():
    performance, used = outcomes.owner_performance(db.session, g.api_user.id)
    log_event("site_performance_viewed", detail=f"API {used} analyses with outcomes")
    return jsonify({"site": performance,
                    "model_card": outcomes.card_performance(current_app.extensions["classifier"].info.card),
                    "disclaimer": DISCLAIMER})


@bp.get("/v1/analyses/<public_id>/report.pdf")
@token_required
@limiter.limit(config_limit("PDF_RATE_LIMIT"))
def report(public_id):
    return report_pdf_response(owned_analysis_or_404(g.api_user.id, public_id), g.api_user.username, "API ")


@bp.get("/v1/analyses/<public_id>/image")
@token_required
def image(public_id):
    return stored_file_response(owned_analysis_or_404(g.api_user.id, public_id), "image", "API ")


@bp.get("/v1/analyses/<public_id>/heatmap")
@token_required
def heatmap(public_id):
    return stored_file_response(owned_analysis_or_404(g.api_user.id, public_id), "heatmap", "API ")

