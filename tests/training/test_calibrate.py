"""Threshold choices of dermalens.training.calibrate, on hand-made validation sets."""

import json

import numpy as np
import pytest

from dermalens.training import calibrate
from dermalens.lesions import CLASSES

NV, MEL, BCC = CLASSES.index("nv"), CLASSES.index("mel"), CLASSES.index("bcc")


def probabilities_for(rows):
    """rows of (top class index, malignant probability carried by mel) -> (n, 7) probabilities."""
    out = np.zeros((len(rows), len(CLASSES)))
    for i, (top, malignant) in enumerate(rows):
        out[i, MEL] = malignant
        out[i, NV] = 1 - malignant
        if top == MEL:
            assert malignant > 0.5
    return out


def test_monitor_threshold_refers_at_least_95_percent_of_malignant_lesions():
    # 40 malignant lesions: 20 with melanoma on top, 20 looking benign with malignant
    # probabilities 0.01 .. 0.20. 5% of 40 = 2 may be missed, so the threshold is the third
    # lowest of those scores (0.03): everything at or above it is referred.
    malignant_rows = [(MEL, 0.9)] * 20 + [(NV, round(0.01 * k, 2)) for k in range(1, 21)]
    benign_rows = [(NV, 0.05)] * 60
    labels = np.array([MEL] * 40 + [NV] * 60)
    thresholds = calibrate.choose_risk_thresholds(labels, probabilities_for(malignant_rows + benign_rows))
    assert thresholds["monitor_max_malignant"] == pytest.approx(0.03)
    referred = probabilities_for(malignant_rows)[:, MEL] >= thresholds["monitor_max_malignant"]
    assert referred.mean() >= 0.95


def test_monitor_threshold_also_refers_at_least_95_percent_of_melanomas():
    # 100 malignant lesions: 80 BCCs, all referred by their top class, and 20 melanomas looking
    # benign with malignant probabilities 0.01 .. 0.20. Missing 5 of the 100 would be within
    # the bound for malignant lesions, but 5 of 20 melanomas is 25%: only one (5% of 20) may
    # be missed, so the threshold is the second lowest melanoma score.
    probabilities = probabilities_for([(NV, round(0.01 * k, 2)) for k in range(1, 21)] + [(NV, 0.05)] * 60)
    bcc = np.zeros((80, len(CLASSES)))
    bcc[:, BCC] = 0.9
    bcc[:, NV] = 0.1
    labels = np.array([MEL] * 20 + [NV] * 60 + [BCC] * 80)
    thresholds = calibrate.choose_risk_thresholds(labels, np.vstack([probabilities, bcc]))
    assert thresholds["monitor_max_malignant"] == pytest.approx(0.02)


def test_monitor_threshold_can_be_held_to_a_reference_models_misses():
    # The first test's lesions, allowed to miss 2.5% of malignant lesions instead of 5%: one of
    # the 40, so the threshold is the second lowest benign-looking malignant score.
    malignant_rows = [(MEL, 0.9)] * 20 + [(NV, round(0.01 * k, 2)) for k in range(1, 21)]
    labels = np.array([MEL] * 40 + [NV] * 60)
    thresholds = calibrate.choose_risk_thresholds(labels, probabilities_for(malignant_rows + [(NV, 0.05)] * 60),
                                                  max_missed={"malignant": 0.025, "melanoma": 0.025})
    assert thresholds["monitor_max_malignant"] == pytest.approx(0.02)


def test_a_reference_cards_misses_are_its_monitored_shares(tmp_path):
    card = tmp_path / "reference.json"
    card.write_text(json.dumps({"name": "reference-model", "version": "1.2.3", "validation": {"risk_by_truth": {
        "malignant": {"monitor": 8, "urgent": 292}, "melanoma": {"monitor": 7, "urgent": 193},
        "benign": {"monitor": 600, "review": 400}}}}))
    max_missed, rule = calibrate.misses_of(card)
    assert max_missed == {"malignant": pytest.approx(8 / 300), "melanoma": pytest.approx(7 / 200)}
    assert "reference-model 1.2.3" in rule and "2.7%" in rule and "3.5%" in rule


def test_misses_as_is_refused_without_risk_only(capsys):
    with pytest.raises(SystemExit) as stopped:
        calibrate.parse_args(["--data", "d", "--model-card", "c.json", "--misses-as", "ref.json"])
    assert stopped.value.code == 2 and "--risk-only" in capsys.readouterr().err


@pytest.mark.parametrize("reference", ["not json", json.dumps({"name": "m", "version": "1"}),
                                       json.dumps({"out_of_fold": {}}), "[]"],
                         ids=["unreadable", "no risk table", "not a model card", "not an object"])
def test_a_bad_misses_as_reference_is_refused_before_the_card_changes(tmp_path, capsys, reference):
    card, reference_path = tmp_path / "model.json", tmp_path / "reference.json"
    card.write_text('{"name": "model"}')
    reference_path.write_text(reference)
    rc = calibrate.main(["--data", str(tmp_path), "--model-card", str(card), "--risk-only",
                         "--misses-as", str(reference_path)])
    assert rc == 2 and str(reference_path) in capsys.readouterr().err
    assert card.read_text() == '{"name": "model"}'


def test_urgent_threshold_is_where_half_of_those_flagged_are_malignant():
    labels = np.array([MEL] * 10 + [NV] * 30)
    rows = [(MEL, 0.9)] * 10 + [(NV, 0.4)] * 10 + [(NV, 0.1)] * 20
    thresholds = calibrate.choose_risk_thresholds(labels, probabilities_for(rows))
    # At 0.40 and below, 10 malignant of 20 flagged: exactly half, so the lowest such is 0.30.
    assert thresholds["urgent_malignant"] == pytest.approx(0.30)
    assert thresholds["monitor_max_malignant"] <= thresholds["urgent_malignant"]


def test_min_confidence_is_the_loosest_with_the_required_gain():
    table = [{"min_confidence": 0.3, "balanced_accuracy_answered": 0.62},
             {"min_confidence": 0.4, "balanced_accuracy_answered": 0.66},
             {"min_confidence": 0.5, "balanced_accuracy_answered": 0.70}]
    assert calibrate.choose_min_confidence(table, overall=0.60) == 0.4
    assert calibrate.choose_min_confidence(table, overall=0.68) == 0.5  # never reached: strictest
    assert calibrate.choose_min_confidence([], overall=0.5) == calibrate.CONFIDENCE_GRID[0]


def test_the_gate_statistics_check_accepts_what_the_device_views_show():
    """The statistics distance is fitted on the images and their device-style views, so an image
    as far out as the views go is in scope, and one far beyond them still is not."""
    from dermalens import gate

    rng = np.random.default_rng(0)
    features = len(gate.STATISTIC_NAMES)
    images = rng.normal(0, 1, (400, features))
    views = rng.normal(0, 3, (400, features))
    embeddings, labels = rng.normal(0, 1, (400, 4)), np.arange(400) % 7
    other_camera = np.zeros(features)
    other_camera[5] = 6.0
    not_a_lesion = np.full(features, 12.0)

    def out_of_scope(fitted, statistics):
        return fitted.statistics_distance(statistics)[0] > fitted.thresholds["max_statistics_distance"]

    with_views = calibrate.fit_gate(images, embeddings, labels, images[:100], embeddings[:100],
                                    views, views[:100])
    without = calibrate.fit_gate(images, embeddings, labels, images[:100], embeddings[:100],
                                 images[:0], images[:0])
    assert out_of_scope(without, other_camera) and not out_of_scope(with_views, other_camera)
    assert out_of_scope(with_views, not_a_lesion)


def test_device_view_statistics_give_one_changed_row_per_image():
    from dermalens import gate, preprocessing
    from tests.images import lesion_array

    images = [lesion_array(200, 150, seed=seed) for seed in range(3)]
    rows = [{"image_id": f"ISIC_{seed:07d}"} for seed in range(3)]
    statistics = calibrate.device_view_statistics(rows, images)
    assert statistics.shape == (3, len(gate.STATISTIC_NAMES))
    originals = np.stack([gate.image_statistics(preprocessing.prepare(image)) for image in images])
    assert not np.allclose(statistics, originals)
