"""Threshold choices of dermalens.training.calibrate, on hand-made validation sets."""

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
