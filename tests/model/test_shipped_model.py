"""The shipped model: golden outputs, the gate on real and generated images, one real request.

These tests load TensorFlow and the weights in models/ (a few seconds, once per session).
After retraining, refresh the golden outputs with `python -m tests.make_golden`.
"""

import csv
import io
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from dermalens import gate, preprocessing
from dermalens.assessment import assess_image, decode_for_analysis
from dermalens.config import DEFAULT_MODEL_CARD
from dermalens.inference import TTA_FLIPS
from dermalens.lesions import CLASSES
from tests.helpers import analysis_id_from, make_app, upload
from tests.images import in_round_field

pytestmark = pytest.mark.tensorflow

FIXTURES = DEFAULT_MODEL_CARD.parents[1] / "tests" / "fixtures"
GOLDEN = FIXTURES / "golden.json"


def fixture_rows():
    with open(FIXTURES / "labels.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def fixture_rgb(image_id: str) -> np.ndarray:
    return decode_for_analysis((FIXTURES / f"{image_id}.jpg").read_bytes())


def analyse(classifier, rgb: np.ndarray, **inputs):
    """The classifier's prediction for a decoded image, prepared as the app prepares it."""
    return classifier.analyse(preprocessing.prepare(rgb), **inputs)


@pytest.fixture(scope="session")
def classifier():
    from dermalens.inference import KerasClassifier

    return KerasClassifier(DEFAULT_MODEL_CARD)


def test_golden_outputs_on_the_fixtures(classifier):
    golden = json.loads(GOLDEN.read_text())
    assert golden["sha256"] == classifier.info.sha256, "golden file is for other weights: refresh it"
    for row in fixture_rows():
        prediction = analyse(classifier, fixture_rgb(row["image_id"]), age=int(row["age"]),
                             sex=row["sex"], site=row["localization"], explain=False)
        expected = golden["probabilities"][row["image_id"]]
        np.testing.assert_allclose([prediction.probabilities[c] for c in CLASSES], expected, atol=1e-4)


def enlarged_upload(image_id: str) -> bytes:
    """The fixture as a clinic's 1024x768 JPEG upload (bicubic enlargement, quality 92)."""
    bgr = cv2.imread(str(FIXTURES / f"{image_id}.jpg"))
    big = cv2.resize(bgr, (1024, 768), interpolation=cv2.INTER_CUBIC)
    return cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()


def server_outputs(classifier, row: dict) -> dict:
    """What the app's assessment of the enlarged upload of a fixture says, as golden.json holds it."""
    assessment = assess_image(classifier, decode_for_analysis(enlarged_upload(row["image_id"])),
                              int(row["age"]), row["sex"], row["localization"])
    prediction = assessment.prediction
    return {"probabilities": [round(prediction.probabilities[c], 6) for c in CLASSES],
            "risk_category": assessment.risk_category,
            "gate_reasons": assessment.gate_reasons, "confidence_reasons": assessment.confidence_reasons,
            "notices": assessment.notices, "heatmap_class": prediction.heatmap_class,
            "heatmap_10x10": np.round(cv2.resize(prediction.heatmap, (10, 10),
                                                 interpolation=cv2.INTER_AREA), 4).tolist()}


def test_golden_outputs_through_the_server_path(classifier):
    """Enlarged uploads through decode, prepare, network, gate and risk give the recorded answers,
    heatmap included."""
    golden = json.loads(GOLDEN.read_text())["uploads_1024x768"]
    for row in fixture_rows():
        outputs, expected = server_outputs(classifier, row), golden[row["image_id"]]
        np.testing.assert_allclose(outputs.pop("probabilities"), expected["probabilities"], atol=1e-4)
        np.testing.assert_allclose(outputs.pop("heatmap_10x10"), expected["heatmap_10x10"], atol=1e-3)
        assert outputs == {key: expected[key] for key in outputs}, row["image_id"]


def test_probabilities_are_calibrated_distributions_with_or_without_metadata(classifier):
    rgb = fixture_rgb(fixture_rows()[0]["image_id"])
    for metadata in ({}, {"age": 70}, {"sex": "female"}, {"site": "face"},
                     {"age": 35, "sex": "male", "site": "back"}):
        probabilities = analyse(classifier, rgb, explain=False, **metadata).probabilities
        assert set(probabilities) == set(CLASSES)
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-6)


def test_heatmap_is_finite_and_covers_the_input(classifier):
    prediction = analyse(classifier, fixture_rgb(fixture_rows()[4]["image_id"]))
    size = classifier.info.input_size
    assert prediction.heatmap.shape == (size, size)
    assert np.isfinite(prediction.heatmap).all() and prediction.heatmap.max() <= 1.0


def test_the_heatmap_is_layercam_of_the_reported_prediction(classifier):
    """Worked out by hand: the gradient of the explained (first) network's logit of the reported
    class, averaged over the four flipped views, at the last stage but one; each cell sums the activations
    weighted by their positive gradients, views flipped back and added, then scaled to [0, 1]."""
    import keras
    import tensorflow as tf

    from dermalens.inference import TTA_FLIPS, upsample_heatmap
    from dermalens.network import explained_feature_layer

    model = classifier.explained.model
    body = keras.Model(model.inputs, [model.get_layer(explained_feature_layer(model)).output, model.output])
    rgb = fixture_rgb("ISIC_0025964")
    prepared = preprocessing.prepare(rgb)
    prediction = classifier.analyse(prepared, age=55, sex="male", site="back")
    image = preprocessing.network_input(prepared, classifier.info.input_size).tensor
    views = tf.constant(np.stack([np.flip(image, flip) for flip in TTA_FLIPS]))
    metadata = tf.constant(np.repeat(preprocessing.encode_metadata(55, "male", "back")[None], 4, 0))
    with tf.GradientTape() as tape:
        feature_maps, logits = body({"image": views, "metadata": metadata})
        score = tf.reduce_mean(logits[:, CLASSES.index(prediction.heatmap_class)])
    gradients = tape.gradient(score, feature_maps).numpy()
    cams = (np.maximum(gradients, 0) * feature_maps.numpy()).sum(-1)
    cam = sum(np.flip(view, flip) for view, flip in zip(cams, TTA_FLIPS))
    assert cam.shape == (10, 10)  # stride 16 over the 160 px input
    np.testing.assert_allclose(prediction.heatmap, upsample_heatmap(cam, classifier.info.input_size),
                               atol=1e-4)


@pytest.mark.parametrize("axes", [(1,), (0,), (0, 1)], ids=["left-right", "up-down", "both"])
def test_the_heatmap_flips_with_the_image(classifier, axes):
    """The heatmap explains the prediction averaged over the flipped views, so a flipped image
    gets the same prediction and the flipped heatmap."""
    rgb = fixture_rgb("ISIC_0025964")
    original, flipped = analyse(classifier, rgb), analyse(classifier, np.ascontiguousarray(np.flip(rgb, axes)))
    assert flipped.probabilities == pytest.approx(original.probabilities, abs=1e-5)
    np.testing.assert_allclose(flipped.heatmap, np.flip(original.heatmap, axes), atol=1e-3)


@pytest.mark.parametrize("image_id", ["ISIC_0025964", "ISIC_0024698"], ids=["melanoma", "nevus"])
def test_the_heatmap_follows_a_lesion_moved_off_centre(classifier, image_id):
    """The fixture's analysed square, extended by half its side to the right and below with its
    own edge pixels, puts the lesion in the upper left: the heatmap's peak goes with it."""
    rgb = fixture_rgb(image_id)
    region = preprocessing.prepare(rgb).region
    side = region.shape[0]
    moved = cv2.copyMakeBorder(region, 0, side // 2, 0, side // 2, cv2.BORDER_REPLICATE)
    heatmap = analyse(classifier, moved).heatmap
    size = heatmap.shape[0]
    peak = np.array(np.unravel_index(np.argmax(heatmap), heatmap.shape))
    lesion_centre, image_centre = np.full(2, size / 3), np.full(2, size / 2)
    assert np.linalg.norm(peak - lesion_centre) < np.linalg.norm(peak - image_centre)


def test_the_heatmap_weighs_the_fixtures_lesions_more_than_a_blob_that_ignores_the_image(classifier):
    from tools import heatmap_quality
    from dermalens.training.data import read_labels

    result = heatmap_quality.measure(classifier, FIXTURES, read_labels(FIXTURES / "labels.csv"))
    assert result["n"] + result["left_out"] == len(fixture_rows()) and result["n"] >= 4
    assert result["unreadable"] == 0
    served, blob = result["served"], result["centred_blob"]
    assert all(0 <= served[key] <= 1 for key in ("pointing", "share_on_lesion", "iou"))
    assert served["share_on_lesion"] > blob["share_on_lesion"]
    assert served["deletion_drop"] > 0


def test_heatmap_quality_counts_missing_images_apart_and_scores_nothing(classifier, tmp_path):
    from tools import heatmap_quality
    from dermalens.training.data import read_labels

    (tmp_path / f"{fixture_rows()[0]['image_id']}.jpg").write_bytes(b"not a jpeg")
    result = heatmap_quality.measure(classifier, tmp_path, read_labels(FIXTURES / "labels.csv"))
    assert result["n"] == result["left_out"] == 0 and result["unreadable"] == len(fixture_rows())
    assert result["served"]["pointing"] is None


def test_the_colour_correction_it_applied_is_reported(classifier):
    rgb = fixture_rgb(fixture_rows()[0]["image_id"])
    assert analyse(classifier, rgb, explain=False).colour_gains == (1.0, 1.0, 1.0)
    cast = np.clip(rgb * np.array([0.7, 1.0, 1.35]), 0, 255).astype(np.uint8)
    gains = analyse(classifier, cast, explain=False).colour_gains
    expected = preprocessing.network_input(preprocessing.prepare(cast), classifier.info.input_size).gains
    assert gains == pytest.approx(tuple(expected)) and gate.colour_notices(gains)


def test_the_card_thresholds_are_the_ones_in_use(classifier):
    card = json.loads(DEFAULT_MODEL_CARD.read_text())
    assert [member.thresholds for member in classifier.gate.members] == [
        member["gate"]["thresholds"] for member in card.get("members", [card])]
    assert classifier.info.thresholds == card["thresholds"]
    assert 0 < card["thresholds"]["min_confidence"] < 1
    assert card["thresholds"]["monitor_max_malignant"] <= card["thresholds"]["urgent_malignant"]


def test_real_dermoscopic_fixtures_uploaded_as_a_clinic_would_pass_the_gate(classifier):
    """Each fixture as a 1024x768 upload. (At their native 200x150 the vascular fixture sits a
    hair beyond member 1's embedding limit, 18.474 against 18.469: each member's gate declines
    about 1% of real images, and the ensemble declines what either declines.)"""
    for row in fixture_rows():
        prepared = preprocessing.prepare(decode_for_analysis(enlarged_upload(row["image_id"])))
        embeddings = classifier.analyse(prepared, explain=False).embeddings
        assert classifier.gate.reasons(prepared, embeddings) == [], row["image_id"]


def test_a_fixture_seen_through_a_round_field_of_view_is_assessed_much_as_without_it(classifier):
    """The field's outside is filled in, so the image is neither declined for its black corners
    nor magnified: the answer stays close to the same upload's without the field."""
    for row in fixture_rows():
        rgb = decode_for_analysis(enlarged_upload(row["image_id"]))
        plain = assess_image(classifier, rgb, explain=False)
        height, width = rgb.shape[:2]
        framed = assess_image(classifier, in_round_field(rgb, (width // 2, height // 2), min(height, width) // 2),
                              explain=False)
        assert not framed.declined, (row["image_id"], framed.gate_reasons)
        assert framed.prediction.top_class == plain.prediction.top_class, row["image_id"]
        difference = [abs(framed.prediction.probabilities[c] - plain.prediction.probabilities[c]) for c in CLASSES]
        assert max(difference) < 0.15, row["image_id"]


def test_the_answer_is_the_mean_of_every_member_networks_calibrated_probabilities(classifier):
    """Each network of the card, run on the served input with its own temperature; the app's
    answer is their mean."""
    from dermalens.inference import softmax

    card = json.loads(DEFAULT_MODEL_CARD.read_text())
    assert len(classifier.members) == len(card.get("members", [card]))
    prepared = preprocessing.prepare(fixture_rgb("ISIC_0025964"))
    prediction = classifier.analyse(prepared, age=55, sex="male", site="back", explain=False)
    image = preprocessing.network_input(prepared, classifier.info.input_size).tensor[None]
    metadata = preprocessing.encode_metadata(55, "male", "back")[None]
    flips = TTA_FLIPS if card["tta"] else TTA_FLIPS[:1]
    views = {"image": np.stack([np.flip(image[0], flip) for flip in flips]),
             "metadata": np.repeat(metadata, len(flips), axis=0)}
    each = [softmax(member.model.predict(views, verbose=0).mean(axis=0), member.temperature)
            for member in classifier.members]
    np.testing.assert_allclose([prediction.probabilities[c] for c in CLASSES], np.mean(each, axis=0), atol=1e-5)


def real_lesion(width=600, height=450) -> np.ndarray:
    rgb = fixture_rgb(fixture_rows()[5]["image_id"])
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_CUBIC)


def text_render() -> np.ndarray:
    from PIL import ImageDraw

    image = Image.new("RGB", (600, 450), "white")
    draw = ImageDraw.Draw(image)
    for line in range(12):
        draw.text((20, 20 + 34 * line), "Referral letter: patient seen in clinic today", fill="black")
    return np.asarray(image)


@pytest.mark.parametrize("make_image, reason", [
    (lambda: real_lesion(120, 90), "too small"),
    (lambda: (real_lesion() * 0.2).astype(np.uint8), "too dark"),
    (lambda: np.clip(real_lesion().astype(int) * 3, 0, 255).astype(np.uint8), "overexposed"),
    (lambda: cv2.GaussianBlur(real_lesion(), (0, 0), 12), "blurred"),
    (text_render, "does not look like a dermoscopic image"),
    (lambda: np.random.default_rng(0).integers(0, 256, (450, 600, 3), dtype=np.uint8),
     "does not look like a dermoscopic image"),
])
def test_each_gate_reason_is_triggered_by_a_generated_image(classifier, make_image, reason):
    rgb = make_image()
    assessment = assess_image(classifier, rgb, explain=False)
    assert assessment.risk_category == "indeterminate"
    assert any(reason in text for text in assessment.gate_reasons), assessment.gate_reasons


def test_one_real_request_through_the_whole_app(tmp_path):
    app = make_app(tmp_path, CLASSIFIER=None, MODEL_CARD=str(DEFAULT_MODEL_CARD))
    client = app.test_client()
    client.post("/register", data={"username": "alice", "password": "p" * 12, "confirm": "p" * 12})
    image = (FIXTURES / f"{fixture_rows()[4]['image_id']}.jpg").read_bytes()
    big = cv2.imencode(".jpg", cv2.resize(cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR),
                                          (1600, 1200), interpolation=cv2.INTER_CUBIC))[1].tobytes()
    response = upload(client, big, patient_ref="REAL-1", age="40", sex="female", site="chest")
    assert response.status_code == 303
    analysis_id = analysis_id_from(response)
    page = client.get(f"/analyses/{analysis_id}").get_data(as_text=True)
    assert "dermalens-resnet18s-v1" in page and page.count("<meter") == 7
    stored = Image.open(io.BytesIO(client.get(f"/analyses/{analysis_id}/image").data))
    heatmap = np.asarray(Image.open(io.BytesIO(client.get(f"/analyses/{analysis_id}/heatmap").data)))
    assert stored.size == (1024, 768) and heatmap.shape == (768, 1024, 3)
    assert np.isfinite(heatmap).all() and heatmap.std() > 0
