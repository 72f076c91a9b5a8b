"""Indeterminate analyses: shown prominently with reasons, never as a confident risk category."""

import io

import pytest
from pypdf import PdfReader

from dermalens.assessment import assess_image
from dermalens.inference import ModelInfo
from tests.helpers import analysis_id_from, make_app, token_for, upload
from tests.fakes import FakeClassifier
from tests.images import lesion_array, malignant_jpeg

REASON = "The image is too blurred to assess. Retake it in focus."


@pytest.fixture
def declining_app(tmp_path):
    return make_app(tmp_path, CLASSIFIER=FakeClassifier(gate_reasons=[REASON]))


@pytest.fixture
def declining_client(declining_app):
    client = declining_app.test_client()
    client.post("/register", data={"username": "alice", "password": "p" * 12, "confirm": "p" * 12})
    return client


def test_result_page_shows_indeterminate_with_reasons(declining_client):
    response = upload(declining_client, malignant_jpeg(), patient_ref="IND-1")
    page = declining_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Indeterminate - retake or review" in page and REASON in page
    assert "Urgent referral" not in page
    assert "unreliable" in page and page.count("<meter") == 7  # probabilities stay visible


def test_history_pdf_and_api_show_indeterminate(declining_app, declining_client):
    analysis_id = analysis_id_from(upload(declining_client, malignant_jpeg(), patient_ref="IND-2"))
    history = declining_client.get("/history?risk=indeterminate").get_data(as_text=True)
    assert analysis_id in history and "Indeterminate" in history
    pdf = declining_client.get(f"/analyses/{analysis_id}/report.pdf").data
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "INDETERMINATE" in text and "too blurred" in text
    headers = {"Authorization": f"Bearer {token_for(declining_app, 'alice')}"}
    body = declining_app.test_client().get(f"/api/v1/analyses/{analysis_id}", headers=headers).json
    assert body["indeterminate"] is True and body["indeterminate_reasons"] == [REASON]
    assert body["risk"]["category"] == "indeterminate"


def test_low_confidence_makes_the_answer_indeterminate():
    classifier = FakeClassifier()
    classifier.info = ModelInfo(**{**classifier.info.__dict__,
                                   "thresholds": {**classifier.info.thresholds, "min_confidence": 0.99}})
    assessment = assess_image(classifier, lesion_array())
    assert assessment.risk_category == "indeterminate"
    assert "uncertain" in assessment.indeterminate_reasons[0]
    assert assessment.gate_reasons == [] and assessment.confidence_reasons == assessment.indeterminate_reasons


def test_gate_reasons_come_before_low_confidence():
    classifier = FakeClassifier(gate_reasons=[REASON])
    assessment = assess_image(classifier, lesion_array())
    assert assessment.indeterminate_reasons == assessment.gate_reasons == [REASON]
    assert assessment.confidence_reasons == []
