"""Turn stored analyses into the plain data the PDF builders take, and name the files."""

import re
from datetime import timezone, tzinfo

from dermalens import clock, pdf_report, storage
from dermalens.analysis_service import COMPARISON_CAUTION, Comparison
from dermalens.lesions import BODY_SITE_LABELS, CLASS_NAMES
from dermalens.outcomes import OUTCOME_DIAGNOSES, OUTCOME_SOURCES
from dermalens.records import Analysis, utc_now
from dermalens.risk import RISK_CATEGORIES

NOT_RECORDED = "not recorded"


def _printed_fields(analysis: Analysis, files: storage.FileStore, clinic_zone: tzinfo) -> dict:
    """What both reports print of one analysis, resolved to display strings and file bytes."""
    return dict(
        analysis_id=analysis.public_id,
        created_at=clock.display(analysis.created_at, clinic_zone),
        patient_ref=analysis.patient_ref or NOT_RECORDED,
        lesion_ref=analysis.lesion_ref or NOT_RECORDED,
        site=BODY_SITE_LABELS.get(analysis.site, NOT_RECORDED),
        image_jpeg=files.read(analysis.image_file),
        heatmap_jpeg=files.read(analysis.heatmap_file),
        image_size=(analysis.image_width, analysis.image_height),
        ranked_classes=[(code, CLASS_NAMES[code], p) for code, p in analysis.ranked_classes],
        malignant_probability=analysis.malignant_probability,
        risk_code=analysis.risk_category,
        risk_label=RISK_CATEGORIES[analysis.risk_category].label,
        declined=analysis.declined,
        indeterminate_reasons=analysis.indeterminate_reasons,
        uncertainty_reasons=analysis.uncertainty_reasons,
        notices=analysis.notices,
        model_version=analysis.model_version,
        outcome=_outcome_line(analysis),
    )


def _outcome_line(analysis: Analysis) -> str:
    if not analysis.has_outcome:
        return ""
    established = f", {analysis.outcome_date.isoformat()}" if analysis.outcome_date else ""
    note = f". {analysis.outcome_note}" if analysis.outcome_note else ""
    return (f"{OUTCOME_DIAGNOSES[analysis.outcome_diagnosis]} ({OUTCOME_SOURCES[analysis.outcome_source]}"
            f"{established}){note}")


def report_data(analysis: Analysis, clinician: str, files: storage.FileStore,
                clinic_zone: tzinfo = timezone.utc) -> pdf_report.ReportData:
    return pdf_report.ReportData(
        **_printed_fields(analysis, files, clinic_zone),
        clinician=clinician,
        age=str(analysis.age) if analysis.age is not None else NOT_RECORDED,
        sex=analysis.sex or NOT_RECORDED,
        note=analysis.note or "",
        risk_action=RISK_CATEGORIES[analysis.risk_category].action,
        model_name=analysis.model_name,
        model_sha256=analysis.model_sha256,
    )


def render_pdf(analysis: Analysis, clinician: str, files: storage.FileStore, paper: str = "a4",
               clinic_zone: tzinfo = timezone.utc) -> bytes:
    return pdf_report.build_report(report_data(analysis, clinician, files, clinic_zone), paper)


def comparison_report_data(comparison: Comparison, clinician: str, files: storage.FileStore,
                           clinic_zone: tzinfo = timezone.utc) -> pdf_report.ComparisonReportData:
    return pdf_report.ComparisonReportData(
        clinician=clinician,
        printed_at=clock.display(utc_now(), clinic_zone),
        analyses=[pdf_report.PrintedAnalysis(**_printed_fields(analysis, files, clinic_zone))
                  for analysis in comparison.analyses],
        summary=comparison.summary,
        cautions=comparison.cautions,
        standing_caution=COMPARISON_CAUTION,
    )


def render_comparison_pdf(comparison: Comparison, clinician: str, files: storage.FileStore,
                          paper: str = "a4", clinic_zone: tzinfo = timezone.utc) -> bytes:
    return pdf_report.build_comparison_report(
        comparison_report_data(comparison, clinician, files, clinic_zone), paper)


def _file_safe(text: str, longest: int = 40) -> str:
    """`text` with runs of anything but ASCII letters, digits, dots, dashes and underscores as
    one dash."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:longest].strip("-.")


def report_filename(analysis: Analysis, clinic_zone: tzinfo = timezone.utc) -> str:
    """"dermalens-PT-001-2026-12-02-Ab3dE6fG.pdf": patient reference (when there is one), local
    date and the start of the analysis id, in characters every file system and mail client keeps."""
    parts = ["dermalens", _file_safe(analysis.patient_ref or ""), _local_day(analysis, clinic_zone),
             analysis.public_id[:8]]  # (URL-safe characters already)
    return "-".join(part for part in parts if part) + ".pdf"


def comparison_filename(analyses: list[Analysis], clinic_zone: tzinfo = timezone.utc) -> str:
    """"dermalens-comparison-PT-001-2026-01-05-to-2026-06-01.pdf" for analyses oldest first."""
    patients = {_file_safe(analysis.patient_ref or "") for analysis in analyses}
    parts = ["dermalens-comparison", patients.pop() if len(patients) == 1 else "",
             _local_day(analyses[0], clinic_zone), "to", _local_day(analyses[-1], clinic_zone)]
    return "-".join(part for part in parts if part) + ".pdf"


def _local_day(analysis: Analysis, clinic_zone: tzinfo) -> str:
    return clock.local(analysis.created_at, clinic_zone).date().isoformat()
