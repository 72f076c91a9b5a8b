"""PDF reports: a document a clinician can file, on A4 or Letter."""

import io
import re

import pytest
from pypdf import PdfReader

from dermalens import gate, pdf_report
from tests.helpers import pdf_text, upload
from tests.images import encode, lesion_array, lesion_jpeg


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


NAMES = "Ωμέγα-Иван-漢字-Łukasz 김민준 Ирина/Ирена"


def embedded_fonts(data: bytes) -> set[str]:
    """Base names of the fonts embedded (with their glyph data) in a PDF."""
    names = set()
    for page in PdfReader(io.BytesIO(data)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descendants = font.get("/DescendantFonts") or [font]
            for descendant in descendants:
                descriptor = descendant.get_object().get("/FontDescriptor")
                if descriptor and "/FontFile2" in descriptor.get_object():
                    names.add(str(font["/BaseFont"]).split("+")[-1])
    return names


def test_names_and_notes_in_any_script_print_as_themselves(logged_in):
    response = upload(logged_in, lesion_jpeg(), patient_ref="Ωμέγα-Иван-漢字-Łukasz", note=NAMES)
    data = logged_in.get(response.headers["Location"] + "/report.pdf").data
    text = pdf_text(data)
    assert "Ωμέγα-Иван-漢字-Łukasz" in text and "김민준" in text and "Ирина/Ирена" in text
    assert {"DejaVuSansCondensed", "DejaVuSansCondensed-Bold", "DroidSansFallback",
            "NanumGothicCoding"} <= embedded_fonts(data)


def test_printable_sets_only_what_the_main_font_lacks_in_a_fallback():
    assert pdf_report.printable("Иван <b>") == "Иван &lt;b&gt;"
    assert pdf_report.printable("a 漢字 b 김") == ('a <font name="DroidSansFallback">漢字</font> b '
                                                 '<font name="NanumGothicCoding">김</font>')


def report_data(**changes) -> pdf_report.ReportData:
    """A complete report for a 600x450 upload with a short note; `changes` override fields."""
    fields = dict(
        analysis_id="x" * 22, created_at="2026-01-01 10:00", clinician="dr", patient_ref="P",
        lesion_ref="L", age="40", sex="male", site="Back", note="Changed in size since spring",
        image_jpeg=encode(lesion_array(600, 450)), heatmap_jpeg=encode(lesion_array(600, 450), "JPEG"),
        image_size=(600, 450),
        ranked_classes=[("nv", "Melanocytic nevus", 0.5), ("mel", "Melanoma", 0.3),
                        ("bkl", "Benign keratosis-like lesion", 0.1)],
        malignant_probability=0.35, risk_code="monitor", risk_label="Monitor", risk_action="Monitor",
        declined=False,
        indeterminate_reasons=[], uncertainty_reasons=[], notices=[], model_name="m", model_version="1",
        model_sha256="0" * 64, outcome="")
    return pdf_report.ReportData(**{**fields, **changes})


def test_a_declined_report_says_so_in_whole_sentences_and_prints_no_diagnosis():
    reasons = ["The image is too blurred to assess. Retake it in focus.", "the image is too dark"]
    data = report_data(risk_code="indeterminate", risk_label="Cannot assess - retake", risk_action="Retake", declined=True,
                       indeterminate_reasons=reasons)
    text = " ".join(pdf_text(pdf_report.build_report(data)).split())
    assert "CANNOT ASSESS - RETAKE - The image is too blurred to assess. Retake it in focus. the image is too dark." in text
    assert "No diagnosis is given" in text and ".." not in text
    assert "Melanocytic nevus" not in text and "Malignant probability" not in text


def test_an_uncertain_report_is_flagged_and_keeps_its_diagnoses():
    data = report_data(uncertainty_reasons=["The model is uncertain: no diagnosis reaches 44% probability."])
    text = " ".join(pdf_text(pdf_report.build_report(data)).split())
    assert "UNCERTAIN - The model is uncertain" in text and "Melanocytic nevus" in text


def test_a_recorded_outcome_is_printed():
    text = " ".join(pdf_text(pdf_report.build_report(report_data(outcome="Melanoma (Histopathology, 2026-03-01)"))).split())
    assert "Outcome (recorded) Melanoma (Histopathology, 2026-03-01)" in text


def test_notices_are_printed_beside_the_result():
    notice = "Colours adjusted before analysis: <the image> is darker & so on."
    text = " ".join(pdf_text(pdf_report.build_report(report_data(notices=[notice]))).split())
    assert "NOTE - " + notice in text and "CANNOT ASSESS" not in text


@pytest.mark.parametrize("flags", [
    {"declined": True, "indeterminate_reasons": ["The image is too blurred to assess. Retake it in focus."]},
    {"uncertainty_reasons": ["The model is uncertain: no diagnosis reaches 44% probability."]},
    {"notices": gate.colour_notices((1.5, 1.3, 1.1))},
])
def test_a_typical_report_fits_on_one_a4_page(flags):
    # A short note and a reason to retake, or a colour notice: still one sheet to file.
    data = report_data(**flags)
    assert len(PdfReader(io.BytesIO(pdf_report.build_report(data, "a4"))).pages) == 1


# Notes of these lengths end page 1 just inside the assessment table.
@pytest.mark.parametrize("paper, repeats", [("a4", 30), ("letter", 8)])
def test_the_clinicians_assessment_is_never_split_across_pages(paper, repeats):
    data = report_data(note="A long history of change. " * repeats)
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(pdf_report.build_report(data, paper))).pages]
    holding = {label: [index for index, text in enumerate(pages) if label in text]
               for label in ("Clinician's assessment", "Clinical impression", "Name and signature")}
    assert len(pages) == 2 and list(holding.values()) == [[1]] * 3


def test_every_page_carries_the_header_and_its_number_of_the_total():
    data = report_data(note="A long history of change. " * 30, patient_ref="PT-77")
    pages = [" ".join(page.extract_text().split())
             for page in PdfReader(io.BytesIO(pdf_report.build_report(data))).pages]
    assert len(pages) == 2
    for number, text in enumerate(pages, start=1):
        assert f"Patient PT-77 · lesion L · analysed 2026-01-01 10:00 · analysis {'x' * 22}" in text
        assert f"Page {number} of 2" in text and "not a diagnosis" in text


def fill_colours(data: bytes) -> set[str]:
    """The fill colours ("r g b rg") used on the first page of a PDF."""
    content = PdfReader(io.BytesIO(data)).pages[0].get_contents().get_data().decode("latin-1")
    return {" ".join(f"{float(value):.3f}" for value in match) for match in
            re.findall(r"([\d.]+) ([\d.]+) ([\d.]+) rg", content)}


@pytest.mark.parametrize("code", ["urgent", "monitor", "indeterminate"])
def test_the_risk_category_is_printed_in_its_colour(code):
    text, background = (tuple(int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
                        for colour in pdf_report.RISK_COLOURS[code])
    colours = fill_colours(pdf_report.build_report(report_data(risk_code=code, declined=code == "indeterminate")))
    assert {" ".join(f"{value:.3f}" for value in colour) for colour in (text, background)} <= colours


def test_the_report_file_is_named_by_patient_date_and_id(logged_in):
    response = upload(logged_in, lesion_jpeg(), patient_ref="Müller / 12 <b>")
    public_id = response.headers["Location"].rsplit("/", 1)[1]
    pdf = logged_in.get(f"/analyses/{public_id}/report.pdf")
    disposition = pdf.headers["Content-Disposition"]
    name = re.fullmatch(r'attachment; filename="([^"]+)"', disposition).group(1)
    assert re.fullmatch(rf"dermalens-M-ller-12-b-\d{{4}}-\d{{2}}-\d{{2}}-{re.escape(public_id[:8])}\.pdf", name), name


def test_a_comparison_file_is_named_by_patient_and_dates(app, logged_in):
    from tests.web.test_compare import analyse, compare_url

    first, second = (analyse(logged_in, patient_ref="PT-3", lesion_ref="arm") for _ in range(2))
    disposition = logged_in.get(compare_url(first, second).replace("/compare?", "/compare/report.pdf?")).headers[
        "Content-Disposition"]
    assert re.fullmatch(r'attachment; filename="dermalens-comparison-PT-3-(\d{4}-\d{2}-\d{2})-to-\1\.pdf"',
                        disposition), disposition
