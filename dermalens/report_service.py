"""Turn a stored analysis into the plain ReportData the PDF builder takes."""

from dermalens import pdf_report, storage
from dermalens.lesions import BODY_SITE_LABELS, CLASS_NAMES
from dermalens.records import Analysis
from dermalens.risk import RISK_CATEGORIES

NOT_RECORDED = "not recorded"


def report_data(analysis: Analysis, clinician: str, upload_folder: str) -> pdf_report.ReportData:
    risk = RISK_CATEGORIES[analysis.risk_category]
    return pdf_report.ReportData(
        analysis_id=analysis.public_id,
        created_at=analysis.created_at.strftime("%Y-%m-%d %H:%M"),
        clinician=clinician,
        patient_ref=analysis.patient_ref or NOT_RECORDED,
        lesion_ref=analysis.lesion_ref or NOT_RECORDED,
        age=str(analysis.age) if analysis.age is not None else NOT_RECORDED,
        sex=analysis.sex or NOT_RECORDED,
        site=BODY_SITE_LABELS.get(analysis.site, NOT_RECORDED),
        note=analysis.note or "",
        image_jpeg=storage.stored_path(upload_folder, analysis.image_file).read_bytes(),
        heatmap_jpeg=storage.stored_path(upload_folder, analysis.heatmap_file).read_bytes(),
        image_size=(analysis.image_width, analysis.image_height),
        ranked_classes=[(code, CLASS_NAMES[code], p) for code, p in analysis.ranked_classes],
        malignant_probability=analysis.malignant_probability,
        risk_label=risk.label,
        risk_action=risk.action,
        indeterminate_reasons=analysis.indeterminate_reasons,
        notices=analysis.notices,
        model_name=analysis.model_name,
        model_version=analysis.model_version,
        model_sha256=analysis.model_sha256,
    )


def render_pdf(analysis: Analysis, clinician: str, upload_folder: str, paper: str = "a4") -> bytes:
    return pdf_report.build_report(report_data(analysis, clinician, upload_folder), paper)
