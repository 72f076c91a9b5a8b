"""Three questions answered apart, in the result page, history, PDF and API: a declined image
("cannot assess - retake") shows no class; an uncertain answer is flagged and still referred."""

import pytest

from dermalens.assessment import assess_image
from dermalens.inference import ModelInfo
from dermalens.lesions import CLASSES
from dermalens.risk import RISK_CATEGORIES
from tests.fakes import FakeClassifier
from tests.helpers import analysis_id_from, make_app, pdf_text, token_for, upload
from tests.images import benign_jpeg, lesion_array, malignant_jpeg

REASON = "The image is too blurred to assess. Retake it in focus."


def unsure_classifier(min_confidence=0.99) -> FakeClassifier:
    """The fake, with a minimum confidence none of its answers reaches."""
    classifier = FakeClassifier()
    classifier.info = ModelInfo(**{**classifier.info.__dict__,
                                   "thresholds": {**classifier.info.thresholds, "min_confidence": min_confidence}})
    return classifier


def signed_in(app):
    client = app.test_client()
    client.post("/register", data={"username": "alice", "password": "p" * 12, "confirm": "p" * 12})
    return client


@pytest.fixture
def declining_app(tmp_path):
    return make_app(tmp_path, CLASSIFIER=FakeClassifier(gate_reasons=[REASON]))


@pytest.fixture
def unsure_app(tmp_path):
    return make_app(tmp_path, CLASSIFIER=unsure_classifier())


def test_a_declined_image_shows_the_reasons_and_no_class_on_its_page(declining_app):
    client = signed_in(declining_app)
    page = client.get(upload(client, malignant_jpeg()).headers["Location"]).get_data(as_text=True)
    assert "Cannot assess - retake" in page and REASON in page
    assert "Urgent referral" not in page and "Malignant probability (melanoma" not in page
    assert "No diagnosis is given" in page
    # What the network computed anyway is behind a closed disclosure labelled unreliable.
    assert "<details class=\"unreliable-probabilities\">" in page and "unreliable, not a result" in page


def test_a_declined_image_shows_no_class_in_history_pdf_or_api(declining_app):
    client = signed_in(declining_app)
    analysis_id = analysis_id_from(upload(client, malignant_jpeg(), patient_ref="IND-2"))
    history = client.get("/history?risk=indeterminate").get_data(as_text=True)
    row = history[history.index("IND-2"):history.index("IND-2") + 1500]
    assert "Not assessed" in row and "Cannot assess" in row and "Melanoma" not in row
    text = pdf_text(client.get(f"/analyses/{analysis_id}/report.pdf").data)
    assert "CANNOT ASSESS - RETAKE" in text and "too blurred" in text
    assert "Most likely diagnoses" not in text and "Malignant probability" not in text
    headers = {"Authorization": f"Bearer {token_for(declining_app, 'alice')}"}
    body = declining_app.test_client().get(f"/api/v1/analyses/{analysis_id}", headers=headers).json
    assert body["indeterminate"] is True and body["indeterminate_reasons"] == [REASON]
    assert body["risk"]["category"] == "indeterminate" and body["top_class"] is None
    assert body["probabilities"] is None and body["ranked"] == [] and body["malignant_probability"] is None
    assert set(body["unreliable_probabilities"]) == set(CLASSES)


def test_low_confidence_flags_the_answer_and_never_declines_it():
    assessment = assess_image(unsure_classifier(), lesion_array())
    assert not assessment.declined and assessment.uncertain
    assert "uncertain" in assessment.confidence_reasons[0]
    assert assessment.risk_category != "indeterminate"


@pytest.mark.parametrize("min_confidence", [0.0, 0.99])
def test_a_likely_malignant_answer_is_referred_whatever_the_confidence(min_confidence):
    classifier = unsure_classifier(min_confidence)
    rgb = lesion_array(colour=(200, 20, 20))  # the fake calls red lesions melanoma
    assessment = assess_image(classifier, rgb)
    assert assessment.prediction.malignant_probability >= 0.5
    assert assessment.risk_category == "urgent" and RISK_CATEGORIES[assessment.risk_category].refers


def test_an_uncertain_answer_is_flagged_on_the_page_in_history_pdf_and_api(unsure_app):
    client = signed_in(unsure_app)
    analysis_id = analysis_id_from(upload(client, malignant_jpeg(), patient_ref="UNS-1"))
    page = client.get(f"/analyses/{analysis_id}").get_data(as_text=True)
    assert "Uncertain." in page and "Urgent referral: suspected melanoma" in page
    assert "Cannot assess" not in page and page.count("<meter") == 7
    assert "uncertain" in client.get("/history").get_data(as_text=True)
    assert "UNCERTAIN" in pdf_text(client.get(f"/analyses/{analysis_id}/report.pdf").data)
    headers = {"Authorization": f"Bearer {token_for(unsure_app, 'alice')}"}
    body = unsure_app.test_client().get(f"/api/v1/analyses/{analysis_id}", headers=headers).json
    assert body["uncertain"] is True and body["uncertainty_reasons"] and body["indeterminate"] is False
    assert body["risk"]["category"] == "urgent" and body["top_class"] == "mel"


def test_gate_reasons_decline_and_leave_no_uncertainty_flag():
    assessment = assess_image(FakeClassifier(gate_reasons=[REASON]), lesion_array())
    assert assessment.declined and assessment.gate_reasons == [REASON]
    assert assessment.confidence_reasons == [] and assessment.risk_category == "indeterminate"


def test_a_benign_answer_is_monitored(logged_in):
    page = logged_in.get(upload(logged_in, benign_jpeg()).headers["Location"]).get_data(as_text=True)
    assert "Monitor" in page and "Uncertain." not in page
