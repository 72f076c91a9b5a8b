"""Risk categories follow the clinical rules and the model card's thresholds."""

import pytest

from dermalens.lesions import CLASSES
from dermalens.risk import RISK_CATEGORIES, assess_risk

THRESHOLDS = {"urgent_malignant": 0.6, "monitor_max_malignant": 0.2}


def probabilities(**given):
    rest = (1.0 - sum(given.values())) / (len(CLASSES) - len(given))
    return {name: given.get(name, rest) for name in CLASSES}


@pytest.mark.parametrize("given, expected", [
    ({"mel": 0.4, "nv": 0.3}, "urgent"),                     # melanoma most likely
    ({"nv": 0.35, "bcc": 0.3, "mel": 0.3}, "urgent"),        # malignant sum above 0.6
    ({"bcc": 0.5, "nv": 0.45}, "routine"),                    # keratinocyte cancer most likely
    ({"akiec": 0.5, "bkl": 0.45}, "routine"),
    ({"nv": 0.7, "mel": 0.2, "bkl": 0.08}, "routine"),      # benign but malignancy not excluded
    ({"nv": 0.94, "mel": 0.01}, "monitor"),                   # confidently benign
])
def test_rules(given, expected):
    assert assess_risk(probabilities(**given), THRESHOLDS) == expected


def test_any_reason_makes_it_indeterminate():
    assert assess_risk(probabilities(mel=0.9), THRESHOLDS, ["image too dark"]) == "indeterminate"


def test_every_category_has_a_label_and_an_action():
    assert set(RISK_CATEGORIES) == {"urgent", "routine", "monitor", "indeterminate"}
    assert all(c.label and c.action for c in RISK_CATEGORIES.values())
