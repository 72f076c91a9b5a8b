"""Outcomes: what a lesion turned out to be, and how the tool has done on a clinic's own patients.

A clinician records the diagnosis that was established (by histopathology, follow-up or expert
consensus) against an analysis. From the outcomes of one clinician's analyses, `site_performance`
works out how often referral caught the malignant lesions and melanomas, how often "monitor" was
right for benign ones, and the confusion of the seven classes, each with a Wilson 95% interval
and the counts it comes from: the one check of the tool that is made on this clinic's patients
and devices. Works with a SQLAlchemy session and plain data, not with Flask.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from dermalens.analysis_service import MAX_NOTE_LENGTH, InvalidInput, clean_text
from dermalens.lesions import CLASS_NAMES, CLASSES, MALIGNANT_CLASSES
from dermalens.records import Analysis, utc_now
from dermalens.risk import RISK_CATEGORIES

OUTCOME_DIAGNOSES = {**CLASS_NAMES, "other_malignant": "Other malignant lesion",
                     "other_benign": "Other benign lesion", "not_excised": "Not excised (no diagnosis)"}
MALIGNANT_OUTCOMES = (*MALIGNANT_CLASSES, "other_malignant")
BENIGN_OUTCOMES = tuple(code for code in (*CLASSES, "other_benign") if code not in MALIGNANT_CLASSES)
OUTCOME_SOURCES = {"histopathology": "Histopathology", "follow_up": "Clinical follow-up",
                   "consensus": "Expert consensus"}
# Below this many outcomes on answered analyses nothing is said about the tool's performance.
MIN_OUTCOMES = 20
Z_95 = 1.959964


@dataclass(frozen=True)
class Outcome:
    diagnosis: str
    source: str
    established: date | None = None
    note: str | None = None


def parse_outcome(fields: Mapping[str, str]) -> Outcome:
    """Validate form or JSON fields `diagnosis`, `source`, optional `date` (YYYY-MM-DD, not in
    the future) and `note` into an Outcome.

    :raise InvalidInput: a missing or unknown diagnosis or source, a bad date, a too-long note.
    """
    diagnosis = str(fields.get("diagnosis") or "").strip()
    if diagnosis not in OUTCOME_DIAGNOSES:
        raise InvalidInput(f"Diagnosis must be one of: {', '.join(OUTCOME_DIAGNOSES)}.", "diagnosis")
    source = str(fields.get("source") or "").strip()
    if source not in OUTCOME_SOURCES:
        raise InvalidInput(f"How it was established must be one of: {', '.join(OUTCOME_SOURCES)}.", "source")
    date_text = str(fields.get("date") or "").strip()
    established = None
    if date_text:
        try:
            established = date.fromisoformat(date_text)
        except ValueError:
            raise InvalidInput("The date must be in YYYY-MM-DD form.", "date") from None
        if not date(1900, 1, 1) <= established <= utc_now().date():
            raise InvalidInput("The date cannot be in the future.", "date")
    note = clean_text(fields.get("note"), MAX_NOTE_LENGTH, "note", multiline=True) if fields.get("note") else None
    return Outcome(diagnosis, source, established, note)


def record_outcome(analysis: Analysis, outcome: Outcome) -> None:
    """Set (or replace) the outcome of an analysis in its session. The caller commits, together
    with the audit event that records it (`audit.record` commits the session), so an outcome is
    never stored unaudited."""
    analysis.outcome_diagnosis, analysis.outcome_source = outcome.diagnosis, outcome.source
    analysis.outcome_date, analysis.outcome_note = outcome.established, outcome.note
    analysis.outcome_recorded_at = utc_now()


def outcome_json(analysis: Analysis) -> dict | None:
    """The recorded outcome as JSON data, or None when there is none."""
    if not analysis.has_outcome:
        return None
    return {"diagnosis": analysis.outcome_diagnosis, "diagnosis_name": OUTCOME_DIAGNOSES[analysis.outcome_diagnosis],
            "group": outcome_group(analysis.outcome_diagnosis), "source": analysis.outcome_source,
            "date": analysis.outcome_date.isoformat() if analysis.outcome_date else None,
            "note": analysis.outcome_note,
            "recorded_at": analysis.outcome_recorded_at.isoformat(timespec="seconds") + "Z"}


def outcome_group(diagnosis: str) -> str:
    """"malignant", "benign" or "unknown" (not excised) for an outcome diagnosis."""
    if diagnosis in MALIGNANT_OUTCOMES:
        return "malignant"
    return "benign" if diagnosis in BENIGN_OUTCOMES else "unknown"


def wilson_interval(successes: int, total: int) -> tuple[float, float] | None:
    """Wilson score 95% interval of a proportion; None when there is nothing to count."""
    if total == 0:
        return None
    p = successes / total
    centre = (p + Z_95 ** 2 / (2 * total)) / (1 + Z_95 ** 2 / total)
    half = Z_95 * math.sqrt(p * (1 - p) / total + Z_95 ** 2 / (4 * total ** 2)) / (1 + Z_95 ** 2 / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion(successes: int, total: int) -> dict:
    """A figure with the counts it comes from and its Wilson interval."""
    return {"value": successes / total if total else None, "successes": successes, "total": total,
            "interval_95": wilson_interval(successes, total)}


def site_performance(records: list[dict]) -> dict:
    """How the tool did on analyses with outcomes.

    :param records: one dict per analysis with an outcome: `risk_category`, `top_class`,
        `uncertain` (bool) and `outcome` (an OUTCOME_DIAGNOSES code).
    :return: counts per risk category and outcome group, declined and uncertain counts, the
        sensitivity of referral for malignant lesions and for melanoma and the specificity of
        "monitor" (among analysed, i.e. not declined, images with a malignant / melanoma /
        benign outcome), the seven-class confusion matrix (outcome rows, top class columns), and
        `enough` (False below MIN_OUTCOMES analysed images with a known outcome group).
    """
    by_category = {code: {"malignant": 0, "benign": 0, "unknown": 0} for code in RISK_CATEGORIES}
    matrix = [[0] * len(CLASSES) for _ in CLASSES]
    referred = {"malignant": [0, 0], "melanoma": [0, 0]}
    monitored_benign = [0, 0]
    for record in records:
        group = outcome_group(record["outcome"])
        by_category[record["risk_category"]][group] += 1
        if record["risk_category"] == "indeterminate":
            continue
        refers = RISK_CATEGORIES[record["risk_category"]].refers
        if group == "malignant":
            referred["malignant"][0] += refers
            referred["malignant"][1] += 1
        if record["outcome"] == "mel":
            referred["melanoma"][0] += refers
            referred["melanoma"][1] += 1
        if group == "benign":
            monitored_benign[0] += record["risk_category"] == "monitor"
            monitored_benign[1] += 1
        if record["outcome"] in CLASSES:
            matrix[CLASSES.index(record["outcome"])][CLASSES.index(record["top_class"])] += 1
    analysed_known = referred["malignant"][1] + monitored_benign[1]
    return {
        "outcomes": len(records),
        "declined": sum(r["risk_category"] == "indeterminate" for r in records),
        "uncertain": sum(bool(r["uncertain"]) for r in records),
        "not_excised": sum(outcome_group(r["outcome"]) == "unknown" for r in records),
        "by_risk_category": {code: counts for code, counts in by_category.items() if any(counts.values())},
        "referral_sensitivity_malignant": proportion(*referred["malignant"]),
        "referral_sensitivity_melanoma": proportion(*referred["melanoma"]),
        "monitor_specificity": proportion(*monitored_benign),
        "confusion_matrix": {"classes": list(CLASSES), "rows_are": "outcome", "columns_are": "top class",
                             "counts": matrix},
        "enough": analysed_known >= MIN_OUTCOMES,
        "minimum_outcomes": MIN_OUTCOMES,
    }


def card_performance(card: dict) -> dict:
    """The same referral figures on the model card's validation split (`risk_by_truth`)."""
    by_truth = card.get("validation", {}).get("risk_by_truth") or {}

    def referral(group: str) -> dict:
        counts = by_truth.get(group) or {}
        analysed = {code: n for code, n in counts.items() if code != "indeterminate"}
        return proportion(sum(n for code, n in analysed.items() if RISK_CATEGORIES[code].refers),
                          sum(analysed.values()))

    benign = {code: n for code, n in (by_truth.get("benign") or {}).items() if code != "indeterminate"}
    return {"referral_sensitivity_malignant": referral("malignant"),
            "referral_sensitivity_melanoma": referral("melanoma"),
            "monitor_specificity": proportion(benign.get("monitor", 0), sum(benign.values())),
            "validation_images": card.get("validation", {}).get("n")}


def owner_performance(session: Session, owner_id: int) -> tuple[dict, int]:
    """`site_performance` of one clinician's analyses with outcomes, and how many it used."""
    analyses = session.scalars(select(Analysis).where(Analysis.user_id == owner_id,
                                                      Analysis.outcome_diagnosis.is_not(None))).all()
    records = [{"risk_category": a.risk_category, "top_class": a.top_class,
                "uncertain": bool(a.uncertainty_reasons), "outcome": a.outcome_diagnosis} for a in analyses]
    return site_performance(records), len(records)
