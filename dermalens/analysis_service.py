"""Analyses as a service: validate inputs, analyse, store, list, delete.

This is the one place that decides what a valid analysis request is and how an analysis is
recorded; the web form and the JSON API both call it. It works with a SQLAlchemy session and a
folder path, not with Flask.

Crash safety: files are written (atomically, under new names) before the row is committed, and
removed again if the commit fails; deletion removes the row first, then the files. A crash can
therefore leave at worst an orphan file without a row, never a row without its files.
"""

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta, timezone, tzinfo

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from dermalens import audit, clock, explanation, preprocessing, storage, timing
from dermalens.assessment import assess_image, decode_for_analysis
from dermalens.inference import Classifier
from dermalens.lesions import BODY_SITES, CLASSES, MAX_AGE, MIN_AGE, SEXES
from dermalens.records import Analysis
from dermalens.risk import RISK_CATEGORIES

MAX_REF_LENGTH = 64
MAX_NOTE_LENGTH = 2000
MAX_PAGE_SIZE = 100
# Paging and date filters beyond these are refused (they would overflow the database's offset
# or the date arithmetic, and no clinic has that many pages or analyses from those years).
MAX_PAGE = 100_000
EARLIEST_DATE, LATEST_DATE = date(1900, 1, 1), date(9998, 12, 31)


class InvalidInput(ValueError):
    """A request the service refuses; `message` is safe to show, `field` names the culprit.

    `status` is the HTTP status the API answers with: 400 for a missing image, 415 for content
    that is not an acceptable image, 422 for a field outside its allowed values.
    """

    def __init__(self, message: str, field: str | None = None, status: int = 422):
        super().__init__(message)
        self.message, self.field, self.status = message, field, status


@dataclass(frozen=True)
class AnalysisRequest:
    image: bytes
    original_filename: str | None = None
    patient_ref: str | None = None
    lesion_ref: str | None = None
    age: int | None = None
    sex: str | None = None
    site: str | None = None
    note: str | None = None


def clean_text(value: str | None, max_length: int, field: str, multiline: bool = False) -> str | None:
    """Strip, drop control and bidi-override characters, enforce a length; empty -> None."""
    if value is None:
        return None
    allowed = "\n\t" if multiline else ""
    cleaned = "".join(ch for ch in str(value)
                      if ch in allowed or unicodedata.category(ch) not in ("Cc", "Cf"))
    cleaned = cleaned.strip()
    if len(cleaned) > max_length:
        raise InvalidInput(f"At most {max_length} characters are allowed.", field)
    return cleaned or None


def parse_request(fields: Mapping[str, str], image: bytes | None,
                  filename: str | None = None) -> AnalysisRequest:
    """Validate form/API fields into an AnalysisRequest (image content is checked later).

    :raise InvalidInput: missing image, or a field outside its allowed values.
    """
    if not image:
        raise InvalidInput("Choose a JPEG or PNG image of the lesion.", "image", status=400)
    age_text = (fields.get("age") or "").strip()
    age = None
    if age_text:
        try:
            age = int(age_text)
        except ValueError:
            raise InvalidInput("Age must be a whole number of years.", "age") from None
        if not MIN_AGE <= age <= MAX_AGE:
            raise InvalidInput(f"Age must be between {MIN_AGE} and {MAX_AGE}.", "age")
    sex = (fields.get("sex") or "").strip() or None
    if sex is not None and sex not in SEXES:
        raise InvalidInput(f"Sex must be one of: {', '.join(SEXES)}.", "sex")
    site = (fields.get("site") or "").strip() or None
    if site is not None and site not in BODY_SITES:
        raise InvalidInput("Choose a body site from the list.", "site")
    return AnalysisRequest(
        image=image,
        # The name is only shown, never used as a path; over-long names are cut, not refused.
        original_filename=clean_text(filename[:255], 255, "image") if filename else None,
        patient_ref=clean_text(fields.get("patient_ref"), MAX_REF_LENGTH, "patient_ref"),
        lesion_ref=clean_text(fields.get("lesion_ref"), MAX_REF_LENGTH, "lesion_ref"),
        age=age, sex=sex, site=site,
        note=clean_text(fields.get("note"), MAX_NOTE_LENGTH, "note", multiline=True),
    )


def create_analysis(session: Session, classifier: Classifier, files: storage.FileStore, owner_id: int,
                    request: AnalysisRequest) -> Analysis:
    """Analyse one image and record it for its owner.

    :raise InvalidInput: the image is not acceptable (nothing is stored).
    Any other exception (inference, disk, database) leaves no row and no file behind.
    """
    with timing.collect() as stages:
        analysis = _create_analysis(session, classifier, files, owner_id, request)
    timing.log_analysis(stages)
    return analysis


def _create_analysis(session, classifier, files, owner_id, request) -> Analysis:
    try:
        with timing.stage("decode"):
            rgb = decode_for_analysis(request.image)
    except preprocessing.InvalidImage as error:
        raise InvalidInput(str(error), "image", status=415) from None

    assessment = assess_image(classifier, rgb, request.age, request.sex, request.site)
    prediction = assessment.prediction
    with timing.stage("encode"):
        overlay = explanation.overlay_heatmap(rgb, prediction.heatmap,
                                              assessment.prepared.square_on(rgb.shape))
        # JPEG for the overlay too: PNG took 45-60 ms for a 1024x768 overlay (a third of the
        # latency budget), JPEG takes 2-3 ms and a heatmap needs no lossless pixels.
        image_bytes, overlay_bytes = storage.encode_jpeg(rgb), storage.encode_jpeg(overlay)

    written: list[str] = []
    try:
        with timing.stage("store"):
            written.append(files.write_new(image_bytes, "jpg"))
            written.append(files.write_new(overlay_bytes, "jpg"))
        analysis = Analysis(
            user_id=owner_id,
            patient_ref=request.patient_ref, lesion_ref=request.lesion_ref, age=request.age,
            sex=request.sex, site=request.site, note=request.note,
            original_filename=request.original_filename,
            image_file=written[0], heatmap_file=written[1],
            image_width=int(rgb.shape[1]), image_height=int(rgb.shape[0]),
            probabilities_json=json.dumps({name: round(prediction.probabilities[name], 6)
                                           for name in CLASSES}),
            top_class=prediction.top_class,
            malignant_probability=prediction.malignant_probability,
            risk_category=assessment.risk_category,
            indeterminate_reasons_json=json.dumps(assessment.gate_reasons),
            uncertainty_reasons_json=json.dumps(assessment.confidence_reasons),
            notices_json=json.dumps(assessment.notices),
            heatmap_class=prediction.heatmap_class,
            model_name=classifier.info.name, model_version=classifier.info.version,
            model_sha256=classifier.info.sha256,
        )
        with timing.stage("database"):
            session.add(analysis)
            session.commit()
    except BaseException:
        session.rollback()
        files.remove(*written)
        raise
    return analysis


def get_owned_analysis(session: Session, owner_id: int, public_id: str) -> Analysis | None:
    """The analysis with this public id if it belongs to this owner, else None (never another's)."""
    return session.scalar(select(Analysis).where(Analysis.public_id == public_id,
                                                 Analysis.user_id == owner_id))


# A comparison fits side by side on one screen (and one printed page) up to this many analyses.
MAX_COMPARED = 4


def parse_comparison_ids(values: list[str]) -> list[str]:
    """The public ids of a comparison request, in the order given, duplicates dropped.

    :raise InvalidInput: fewer than two or more than MAX_COMPARED distinct ids.
    """
    ids = list(dict.fromkeys(value.strip() for value in values if value and value.strip()))
    if not 2 <= len(ids) <= MAX_COMPARED:
        raise InvalidInput(f"Select between 2 and {MAX_COMPARED} analyses to compare "
                           f"({len(ids)} selected).", "ids", status=400)
    return ids


def get_owned_analyses(session: Session, owner_id: int, public_ids: list[str]) -> list[Analysis] | None:
    """These analyses of this owner, oldest first; None if any of them is not the owner's
    (or does not exist): a comparison never reveals, nor partly shows, another's records."""
    analyses = list(session.scalars(
        select(Analysis).where(Analysis.public_id.in_(public_ids), Analysis.user_id == owner_id)
        .order_by(Analysis.created_at, Analysis.id)))
    return analyses if len(analyses) == len(set(public_ids)) else None


def other_analyses_of_lesion(session: Session, analysis: Analysis,
                             limit: int = MAX_COMPARED - 1) -> list[Analysis]:
    """The owner's other analyses with the same patient and lesion reference (ignoring case),
    newest first.

    Empty when either reference is missing: without both, "the same lesion" cannot be told.
    """
    if not analysis.patient_ref or not analysis.lesion_ref:
        return []
    query = (select(Analysis)
             .where(Analysis.user_id == analysis.user_id, Analysis.id != analysis.id,
                    _same_ignoring_case(Analysis.patient_ref, analysis.patient_ref),
                    _same_ignoring_case(Analysis.lesion_ref, analysis.lesion_ref))
             .order_by(Analysis.created_at.desc(), Analysis.id.desc()).limit(limit))
    return list(session.scalars(query))


def _starts_ignoring_case(column, prefix: str):
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"{escaped}%", escape="\\")


def _same_ignoring_case(column, value: str):
    # Both sides through the database's lower(): SQLite folds ASCII only, and Python's lower()
    # on one side alone would make "MÜLLER" differ from itself.
    return func.lower(column) == func.lower(value)


@dataclass(frozen=True)
class Comparison:
    """Analyses side by side (oldest first) and what a reader must know before comparing them."""

    analyses: list[Analysis]
    # Cautions, as sentences: different patients or lesions, different model versions.
    cautions: list[str]
    # Change in malignant probability from the first to the last, in whole percentage points
    # between the percentages as shown; None when either image was declined (its probabilities
    # are not a result) or the references say they are not one lesion.
    malignant_change: int | None
    # That change (or why there is none) and the risk categories first and last, in one sentence.
    summary: str


# Shown with every comparison, on screen and on paper.
COMPARISON_CAUTION = ("A change in the model's probability is not a measurement of change in the "
                      "lesion. Compare the images themselves, and take follow-up images with the "
                      "same dermoscope and settings.")


def shown_percent(probability: float) -> int:
    """A probability as the whole percentage every screen and report shows."""
    return round(100 * probability)


def compare(analyses: list[Analysis], clinic_zone: tzinfo = timezone.utc) -> Comparison:
    """What the comparison page shows for these analyses (oldest first, as `get_owned_analyses`
    returns them); times in the summary are in `clinic_zone`.

    A change is described only between two analyses that may show one lesion: none when their
    patient or lesion references differ.
    """
    cautions, different = [], []
    for field, noun in (("patient_ref", "patient"), ("lesion_ref", "lesion")):
        references = [(getattr(analysis, field) or "").lower() for analysis in analyses]
        if "" in references:
            cautions.append(f"Not every analysis has a {noun} reference: check that they show the "
                            f"same {noun}.")
        elif len(set(references)) > 1:
            cautions.append(f"These analyses have different {noun} references.")
            different.append(noun)
    versions = sorted({analysis.model_version for analysis in analyses})
    if len(versions) > 1:
        cautions.append(f"Made by different model versions ({', '.join(versions)}): a difference "
                        "may come from the model rather than the lesion.")
    first, last = analyses[0], analyses[-1]
    if different:
        return Comparison(analyses, cautions, None, f"These analyses are of different "
                          f"{' and '.join(noun + 's' for noun in different)}, so no change is "
                          "described: a change means something only between images of one lesion.")
    if first.declined or last.declined:
        return Comparison(analyses, cautions, None, "The image of the first or the last analysis "
                          "could not be assessed, so no change in probability is given.")
    first_percent, last_percent = (shown_percent(a.malignant_probability) for a in (first, last))
    malignant_change = last_percent - first_percent
    first_risk, last_risk = (RISK_CATEGORIES[a.risk_category].label for a in (first, last))
    risk = (f"the risk category stayed {first_risk}" if first_risk == last_risk
            else f"the risk category went from {first_risk} to {last_risk}")
    summary = (f"From {clock.display(first.created_at, clinic_zone)} to "
               f"{clock.display(last.created_at, clinic_zone)}, the malignant probability went from "
               f"{first_percent}% to {last_percent}% ({malignant_change:+d} percentage points); {risk}.")
    return Comparison(analyses, cautions, malignant_change, summary)


class DeleteFailed(RuntimeError):
    """Nothing was deleted (the stored files could not be removed); the message is for the user."""


def delete_analysis(session: Session, files: storage.FileStore, analysis: Analysis, audit_event: dict) -> bool:
    """Delete the record, its two files and write its audit event (`audit.add` fields), all or
    nothing.

    Of concurrent deletes of one analysis exactly one returns True; the others find it gone and
    return False, changing nothing. The row is deleted first (the database lock orders racing
    deletes), then the files are set aside, then the row's deletion and the event are committed
    together and the set-aside files removed.

    :raise DeleteFailed: the files could not be removed (e.g. the folder is not writable): the
        record, its files and the trail are as they were.
    """
    analysis_id, names = analysis.id, (analysis.image_file, analysis.heatmap_file)
    deleted = session.execute(delete(Analysis).where(Analysis.id == analysis_id)
                              .execution_options(synchronize_session=False)).rowcount
    if not deleted:
        session.rollback()
        return False
    audit.add(session, "analysis_deleted", **audit_event)
    try:
        moved = files.set_aside(*names)
    except OSError:
        session.rollback()
        raise DeleteFailed("The analysis could not be deleted: its files cannot be removed from "
                           "the storage folder. Nothing was deleted; tell the operator.") from None
    try:
        session.commit()
    except BaseException:
        session.rollback()
        files.restore(moved)
        raise
    files.purge(moved)
    return True


@dataclass(frozen=True)
class HistoryFilters:
    # References match from their start, ignoring case ("PT-1" lists "PT-1" and "PT-12"), or
    # whole with `exact_refs` (a link to one lesion's analyses: "arm" must not list "arm-2").
    patient_ref: str | None = None
    lesion_ref: str | None = None
    exact_refs: bool = False
    risk_category: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    # True: only analyses with a recorded outcome; False: only those without; None: all.
    with_outcome: bool | None = None


OUTCOME_FILTERS = {"with": True, "without": False}


def parse_history_filters(args: Mapping[str, str]) -> HistoryFilters:
    """Query-string filters -> HistoryFilters (`match=exact`: references match whole).

    :raise InvalidInput: unknown risk category, outcome filter or match, a date not in
        YYYY-MM-DD form, or a from-date after the to-date.
    """
    risk = (args.get("risk") or "").strip() or None
    if risk is not None and risk not in RISK_CATEGORIES:
        raise InvalidInput("Unknown risk category.", "risk")
    outcome = (args.get("outcome") or "").strip() or None
    if outcome is not None and outcome not in OUTCOME_FILTERS:
        raise InvalidInput("The outcome filter must be 'with' or 'without'.", "outcome")
    match = (args.get("match") or "").strip() or "prefix"
    if match not in ("prefix", "exact"):
        raise InvalidInput("match must be 'prefix' or 'exact'.", "match")
    date_from = _parse_date(args.get("date_from"), "date_from")
    date_to = _parse_date(args.get("date_to"), "date_to")
    if date_from and date_to and date_from > date_to:
        raise InvalidInput(f"The from date ({date_from}) is after the to date ({date_to}): no "
                           "analysis can lie between them.", "date_from")
    return HistoryFilters(
        patient_ref=clean_text(args.get("patient_ref"), MAX_REF_LENGTH, "patient_ref"),
        lesion_ref=clean_text(args.get("lesion_ref"), MAX_REF_LENGTH, "lesion_ref"),
        exact_refs=match == "exact",
        risk_category=risk,
        date_from=date_from,
        date_to=date_to,
        with_outcome=OUTCOME_FILTERS.get(outcome),
    )


def _parse_date(value: str | None, field: str) -> date | None:
    if not value or not value.strip():
        return None
    try:
        parsed = date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput("Dates must be in YYYY-MM-DD form.", field) from None
    if not EARLIEST_DATE <= parsed <= LATEST_DATE:
        raise InvalidInput(f"Dates must lie between {EARLIEST_DATE} and {LATEST_DATE}.", field)
    return parsed


def parse_paging(args: Mapping[str, str], default_page_size: int) -> tuple[int, int]:
    """(page, page size) from the query's `page` and `per_page`: whole numbers in ASCII digits;
    an absent one takes its default (1, `default_page_size`); the page size is clamped to
    MAX_PAGE_SIZE.

    :raise InvalidInput: a page outside 1..MAX_PAGE, or a value that is not a whole number >= 1.
    """
    def whole(field: str, default: int, largest: int | None) -> int:
        text = args.get(field)
        if text is None or text == "":
            return default
        if not (text.isascii() and text.isdigit()) or int(text) < 1 or (largest and int(text) > largest):
            limit = f"from 1 to {largest}" if largest else "of at least 1"
            raise InvalidInput(f"{field} must be a whole number {limit}.", field, status=400)
        return int(text)

    page = whole("page", 1, MAX_PAGE)
    return page, min(whole("per_page", default_page_size, None), MAX_PAGE_SIZE)


def list_analyses(session: Session, owner_id: int, filters: HistoryFilters, page: int,
                  page_size: int, clinic_zone: tzinfo = timezone.utc) -> tuple[list[Analysis], int]:
    """One page of the owner's analyses, newest first, and the total matching count.

    `page` starts at 1 and `page_size` is clamped to 1..MAX_PAGE_SIZE. The filters' dates are
    days in `clinic_zone`, from its midnight to the next.
    """
    page_size = max(1, min(int(page_size), MAX_PAGE_SIZE))
    page = max(1, int(page))
    query = select(Analysis).where(Analysis.user_id == owner_id)
    for column, reference in ((Analysis.patient_ref, filters.patient_ref),
                              (Analysis.lesion_ref, filters.lesion_ref)):
        if reference:
            query = query.where(_same_ignoring_case(column, reference) if filters.exact_refs
                                else _starts_ignoring_case(column, reference))
    if filters.risk_category:
        query = query.where(Analysis.risk_category == filters.risk_category)
    if filters.with_outcome is not None:
        recorded = Analysis.outcome_diagnosis.is_not(None)
        query = query.where(recorded if filters.with_outcome else ~recorded)
    if filters.date_from:
        query = query.where(Analysis.created_at >= clock.start_of_day(filters.date_from, clinic_zone))
    if filters.date_to:
        query = query.where(Analysis.created_at < clock.start_of_day(filters.date_to + timedelta(days=1),
                                                                       clinic_zone))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    items = session.scalars(query.order_by(Analysis.created_at.desc(), Analysis.id.desc())
                            .limit(page_size).offset((page - 1) * page_size)).all()
    return list(items), int(total or 0)
