"""Evaluation metrics, checked against figures worked out by hand."""

import json

import numpy as np
import pytest

from dermalens.training import metrics


def test_toy_confusion_matrix_figures():
    # Three classes in a 7-class space: truth 0,0,0,0 / 1,1 / 4,4,4,4 (akiec, bcc, mel).
    labels = [0, 0, 0, 0, 1, 1, 4, 4, 4, 4]
    predicted = [0, 0, 0, 1, 1, 4, 4, 4, 5, 5]
    matrix = metrics.confusion_matrix(labels, predicted)
    assert matrix[0].tolist() == [3, 1, 0, 0, 0, 0, 0]
    assert matrix[4].tolist() == [0, 0, 0, 0, 2, 2, 0]
    recall = metrics.recall_per_class(matrix)
    assert recall[0] == 0.75 and recall[1] == 0.5 and recall[4] == 0.5 and np.isnan(recall[2])
    # Balanced accuracy averages only classes present in the truth: (0.75 + 0.5 + 0.5) / 3.
    assert metrics.balanced_accuracy(matrix) == pytest.approx(1.75 / 3)
    precision = metrics.precision_per_class(matrix)
    assert precision[1] == 0.5 and precision[4] == pytest.approx(2 / 3) and precision[5] == 0


def test_all_nevus_classifier_scores_one_seventh():
    labels = np.arange(7).repeat(10)
    matrix = metrics.confusion_matrix(labels, np.full(70, 5))
    assert metrics.balanced_accuracy(matrix) == pytest.approx(1 / 7)


def test_auc_by_hand():
    # Positives 0.9, 0.4; negatives 0.5, 0.1: pairs won 3 of 4.
    assert metrics.roc_auc([1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1]) == 0.75
    assert metrics.roc_auc([1, 0], [0.5, 0.5]) == 0.5  # ties count half
    assert np.isnan(metrics.roc_auc([1, 1], [0.2, 0.3]))


def test_roc_curve_runs_from_origin_to_corner():
    fpr, tpr = metrics.roc_curve([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])
    assert (fpr[0], tpr[0]) == (0, 0) and (fpr[-1], tpr[-1]) == (1, 1)


def test_roc_curve_never_splits_tied_scores():
    # 0.5 is shared by a positive and a negative: one threshold takes both, a diagonal step.
    fpr, tpr = metrics.roc_curve([1, 0, 1, 0], [0.9, 0.5, 0.5, 0.1])
    assert list(zip(fpr, tpr)) == [(0, 0), (0, 0.5), (0.5, 1), (1, 1)]


@pytest.mark.parametrize("seed", range(5))
def test_auc_is_the_area_under_the_roc_curve_and_the_share_of_correctly_ranked_pairs(seed):
    rng = np.random.default_rng(seed)
    truth = rng.random(60) < 0.3
    scores = rng.integers(0, 8, 60) / 8   # many ties
    pairs = scores[truth][:, None] - scores[~truth][None, :]
    by_pairs = ((pairs > 0).sum() + 0.5 * (pairs == 0).sum()) / pairs.size
    fpr, tpr = metrics.roc_curve(truth, scores)
    under_curve = np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)
    assert metrics.roc_auc(truth, scores) == pytest.approx(by_pairs, abs=1e-12)
    assert under_curve == pytest.approx(by_pairs, abs=1e-12)


def test_ece_by_hand():
    # Two predictions at confidence 0.8 (bin 0.8], one right one wrong: |0.8 - 0.5| = 0.3.
    probabilities = np.array([[0.8, 0.2], [0.8, 0.2]])
    assert metrics.expected_calibration_error([0, 1], probabilities) == pytest.approx(0.3)
    perfect = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert metrics.expected_calibration_error([0, 1], perfect) == pytest.approx(0.0)


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, (4000, 7))
    labels = np.array([rng.choice(7, p=p) for p in metrics.softmax(true_logits)])
    fitted = metrics.fit_temperature(true_logits * 3.0, labels)  # overconfident by 3x
    assert fitted == pytest.approx(3.0, rel=0.1)


def test_sensitivity_at_specificity_by_hand():
    truth = [1, 1, 1, 1, 0, 0, 0, 0, 0]
    scores = [0.9, 0.8, 0.6, 0.2, 0.7, 0.5, 0.3, 0.1, 0.05]
    # At >= 80% specificity at most one of the five negatives may score >= t: t = 0.6 keeps
    # 0.7 out of five (spec 0.8) and catches 0.9, 0.8, 0.6 (sensitivity 3/4).
    assert metrics.sensitivity_at_specificity(truth, scores, 0.8) == 0.75
    assert metrics.sensitivity_at_specificity(truth, scores, 1.0) == 0.5   # t = 0.8
    assert metrics.sensitivity_at_specificity(truth, scores, 0.0) == 1.0
    # A tie between a positive and a negative cannot be split: both or neither are positive.
    assert metrics.sensitivity_at_specificity([1, 0], [0.5, 0.5], 1.0) == 0.0
    assert np.isnan(metrics.sensitivity_at_specificity([0, 0], [0.1, 0.2], 0.9))


def test_classification_report_keys_and_json_safety():
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 4])
    probabilities = np.eye(7)[[0, 1, 2, 3, 4, 5, 6, 5]] * 0.9 + 0.1 / 7
    report = metrics.classification_report(labels, probabilities)
    assert set(report) >= {"n", "accuracy", "balanced_accuracy", "recall", "precision",
                           "confusion_matrix", "auc_malignant", "auc_melanoma", "ece"}
    assert report["n"] == 8 and report["recall"]["mel"] == 0.5
    only_benign = metrics.classification_report(np.array([5, 5]), probabilities[:2])
    assert only_benign["auc_malignant"] is None
    assert report["sensitivity_at_specificity"]["melanoma"]["0.90"] == 0.5
    assert only_benign["sensitivity_at_specificity"]["malignant"] == {"0.80": None, "0.90": None, "0.95": None}
    json.dumps(report)


def noisy_predictions(seed=0, per_class=(40, 40, 60, 15, 50, 200, 20), accuracy=0.7):
    """Labels and probabilities of a classifier right `accuracy` of the time, all classes present."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(7), per_class)
    predicted = np.where(rng.random(len(labels)) < accuracy, labels, rng.integers(0, 7, len(labels)))
    probabilities = np.eye(7)[predicted] * 0.6 + rng.dirichlet(np.ones(7), len(labels)) * 0.4
    return labels, probabilities


def test_bootstrap_intervals_bracket_the_figures_and_are_reproducible():
    labels, probabilities = noisy_predictions()
    report = metrics.classification_report(labels, probabilities)
    intervals = metrics.bootstrap_intervals(labels, probabilities, resamples=300, seed=1)
    assert intervals["level"] == 0.95 and intervals["resamples"] == 300
    for name, point in (("balanced_accuracy", report["balanced_accuracy"]),
                        ("melanoma_recall", report["recall"]["mel"]),
                        ("auc_malignant", report["auc_malignant"]), ("auc_melanoma", report["auc_melanoma"])):
        low, high = intervals[name]
        assert low < point < high, name
    assert intervals == metrics.bootstrap_intervals(labels, probabilities, resamples=300, seed=1)


def test_bootstrap_intervals_narrow_with_more_images():
    small = metrics.bootstrap_intervals(*noisy_predictions(), resamples=300)
    large = metrics.bootstrap_intervals(*noisy_predictions(per_class=(400, 400, 600, 150, 500, 2000, 200)),
                                        resamples=300)
    width = lambda intervals: intervals["balanced_accuracy"][1] - intervals["balanced_accuracy"][0]
    assert width(large) < width(small) / 2


def test_bootstrap_intervals_of_a_perfect_classifier_are_points_and_undefined_figures_are_none():
    labels = np.array([0, 1, 2, 5, 5, 6])  # no melanoma
    probabilities = np.eye(7)[labels]
    intervals = metrics.bootstrap_intervals(labels, probabilities, resamples=50)
    assert intervals["balanced_accuracy"] == [1.0, 1.0] and intervals["auc_malignant"] == [1.0, 1.0]
    assert intervals["melanoma_recall"] is None and intervals["auc_melanoma"] is None


def test_prior_correction_undoes_a_prior_that_under_calls_a_class():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(7), 300)
    true_logits = rng.normal(0, 1, (len(labels), 7)) + 2.5 * np.eye(7)[labels]
    shift = np.array([0.0, 0.0, 0.0, 0.0, -2.0, 1.0, 0.0])     # melanoma under-called, nevus over-called
    offsets = metrics.fit_prior_correction(true_logits + shift, labels)
    assert offsets.sum() == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(offsets, -(shift - shift.mean()), atol=0.15)

    def melanoma_recall(logits):
        return metrics.recall_per_class(metrics.confusion_matrix(labels, logits.argmax(1)))[metrics.MELANOMA_INDEX]
    assert melanoma_recall(true_logits + shift + offsets) > melanoma_recall(true_logits + shift) + 0.3


def test_prior_correction_leaves_a_balanced_network_almost_as_it_is():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(7), 300)
    logits = rng.normal(0, 1, (len(labels), 7)) + 2.5 * np.eye(7)[labels]
    assert np.abs(metrics.fit_prior_correction(logits, labels)).max() < 0.1
