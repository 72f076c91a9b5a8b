"""PDF reports: a document a clinician can file, on A4 or Letter."""

import io

import pytest
from pypdf import PdfReader

from dermalens import pdf_report
from tests.conftest import upload
from tests.images import encode, lesion_array, lesion_jpeg


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_pdf_report_contents_and_headers(logged_in, analysis_id):
    response = logged_in.get(f"/analyses/{analysis_id}/report.pdf")
    assert response.status_code == 200
    assert response.data.startswith(b"%PDF-")
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Cache-Control"] == "no-store"
    text = pdf_text(response.data)
    for expected in ("PT-001", "Melanocytic nevus", "Malignant probability", "Risk category",
                     "not a diagnosis", "fake-resnet", "f" * 64, "alice", "signature",
                     "Histology", "54", "female"):
        assert expected in text, expected
    # The model's known limits travel with the printed result (text extraction may wrap lines).
    assert "standard settings" in " ".join(text.split())


@pytest.mark.parametrize("paper, size", [("a4", (595, 842)), ("letter", (612, 792))])
def test_pdf_paper_sizes(logged_in, analysis_id, paper, size):
    data = logged_in.get(f"/analyses/{analysis_id}/report.pdf?paper={paper}").data
    box = PdfReader(io.BytesIO(data)).pages[0].mediabox
    assert (round(box.width), round(box.height)) == size


def test_markup_in_text_fields_is_printed_literally(logged_in):
    hostile = '<img src="http://127.0.0.1:9/x.png"/> <font color="[[[x]]]">a < b & c</font>'
    response = upload(logged_in, lesion_jpeg(), patient_ref="<b>PT</b>", note=hostile)
    data = logged_in.get(response.headers["Location"] + "/report.pdf").data
    text = pdf_text(data)
    assert "a < b & c" in text and "<b>PT</b>" in text


def test_indeterminate_report_says_so(tmp_path):
    data = pdf_report.ReportData(
        analysis_id="x" * 22, created_at="2026-01-01 10:00", clinician="dr", patient_ref="P",
        lesion_ref="L", age="40", sex="male", site="Back", note="", image_jpeg=encode(lesion_array()),
        heatmap_jpeg=encode(lesion_array(), "JPEG"), image_size=(320, 240),
        ranked_classes=[("nv", "Melanocytic nevus", 0.5)], malignant_probability=0.2,
        risk_label="Indeterminate - retake or review", risk_action="Retake",
        indeterminate_reasons=["the image is too blurred"], model_name="m", model_version="1",
        model_sha256="0" * 64)
    text = pdf_text(pdf_report.build_report(data))
    assert "INDETERMINATE" in text and "too blurred" in text and "not reliable" in text
