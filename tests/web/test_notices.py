"""Notices: when the network saw an image's colours adjusted, the clinician is told so, beside an
answer that stands, on screen, in the PDF, in the API and in the history's comparison."""

import io

import numpy as np
import pytest
from PIL import Image

from dermalens import gate, preprocessing
from dermalens.extensions import db
from dermalens.records import Analysis
from tests.helpers import FIXTURES, analysis_id_from, pdf_text, token_for, upload
from tests.images import with_gains

FIXTURE = FIXTURES / "ISIC_0024698.jpg"
NOTICE_START = "Colours adjusted before analysis"


def fixture_rgb() -> np.ndarray:
    return np.asarray(Image.open(FIXTURE).convert("RGB"))


def jpeg(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def cool_cast(rgb: np.ndarray) -> np.ndarray:
    """The image under a strongly blue light (a white balance no training image has)."""
    return with_gains(rgb, (0.7, 1.0, 1.35))


@pytest.mark.parametrize("gains", [None, (1.0, 1.0, 1.0), (1.04, 1.0, 0.96), (0.951, 0.951, 0.951)])
def test_no_notice_for_no_or_small_corrections(gains):
    assert gate.colour_notices(gains) == []


@pytest.mark.parametrize("gains, finding, change", [
    ((1.3, 1.3, 1.3), "the image is darker than almost all training images", "30%"),
    ((0.8, 0.8, 0.8), "the image is brighter than almost all training images", "20%"),
    ((0.85, 1.0, 1.18), "its white balance (colour cast) is outside the training images' range", "18%"),
    ((1.5, 1.3, 1.1), "its white balance and exposure are outside the training images' range", "50%"),
])
def test_a_notice_says_what_was_adjusted_and_by_how_much(gains, finding, change):
    [notice] = gate.colour_notices(gains)
    assert notice.startswith(NOTICE_START) and finding in notice
    assert f"(channels scaled by up to {change})" in notice and "retake at standard dermoscope settings" in notice


def test_a_real_dermoscopic_image_gets_no_notice_but_a_colour_cast_does():
    rgb = fixture_rgb()

    def gains(image):
        return preprocessing.network_input(preprocessing.prepare(image), 160).gains

    assert gate.colour_notices(gains(rgb)) == []
    assert gate.colour_notices(gains(cool_cast(rgb)))


def test_the_notice_is_shown_with_the_answer_and_kept(app, logged_in):
    public_id = analysis_id_from(upload(logged_in, jpeg(cool_cast(fixture_rgb()))))
    page = logged_in.get(f"/analyses/{public_id}").get_data(as_text=True)
    assert NOTICE_START in page and 'class="notices"' in page
    with app.app_context():
        analysis = db.session.query(Analysis).filter_by(public_id=public_id).one()
        assert analysis.risk_category != "indeterminate"  # a notice leaves the answer standing
        assert analysis.notices[0].startswith(NOTICE_START)
    report = " ".join(pdf_text(logged_in.get(f"/analyses/{public_id}/report.pdf").data).split())
    assert "NOTE - " + NOTICE_START in report


def test_an_image_in_typical_light_has_no_notice(app, logged_in):
    public_id = analysis_id_from(upload(logged_in, FIXTURE.read_bytes()))
    page = logged_in.get(f"/analyses/{public_id}").get_data(as_text=True)
    assert NOTICE_START not in page
    assert NOTICE_START not in pdf_text(logged_in.get(f"/analyses/{public_id}/report.pdf").data)


def test_the_api_lists_notices(app, client, auth):
    auth.register()
    headers = {"Authorization": f"Bearer {token_for(app, 'alice')}"}
    for image, expected in ((FIXTURE.read_bytes(), 0), (jpeg(cool_cast(fixture_rgb())), 1)):
        response = client.post("/api/v1/analyses", headers=headers,
                               data={"image": (io.BytesIO(image), "lesion.jpg")},
                               content_type="multipart/form-data")
        assert response.status_code == 201
        assert len(response.json["notices"]) == expected
        assert client.get(response.json["urls"]["self"], headers=headers).json["notices"] == response.json["notices"]


def test_evaluation_reports_how_often_a_notice_was_shown_and_how_those_answers_fared():
    from dermalens.training import evaluate

    labels = np.array([0, 1, 2, 3])
    probabilities = np.eye(7)[[0, 1, 5, 5]]  # right, right, wrong, wrong
    results = {"labels": labels, "probabilities": probabilities, "skipped": [], "ids": list("abcd"),
               "indeterminate": np.zeros(4, bool), "noticed": np.array([True, False, False, False])}
    report = evaluate.summarise(results)
    assert report["notice_rate"] == 0.25
    assert report["accuracy_with_notice"] == 1.0 and report["accuracy_without_notice"] == pytest.approx(1 / 3)
    results["noticed"] = np.zeros(4, bool)
    report = evaluate.summarise(results)
    assert report["notice_rate"] == 0 and report["accuracy_with_notice"] is None
    assert report["accuracy_without_notice"] == 0.5
