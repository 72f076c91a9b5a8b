"""Risk categories follow the clinical rules (shared/docs/clinical.md) and the card's thresholds:
three questions answered apart, and a recommendation that errs on the patient's side."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dermalens.config import DEFAULT_MODEL_CARD
from dermalens.lesions import CLASSES, MALIGNANT_CLASSES
from dermalens.risk import CURRENT_CATEGORIES, RISK_CATEGORIES, assess_risk

THRESHOLDS = {"urgent_malignant": 0.6, "urgent_melanoma": 0.5, "referral_keratinocyte": 0.45,
              "monitor_max_malignant": 0.2}
SHIPPED_THRESHOLDS = json.loads(DEFAULT_MODEL_CARD.read_text())["thresholds"]


def probabilities(**given):
    rest = (1.0 - sum(given.values())) / (len(CLASSES) - len(given))
    return {name: given.get(name, rest) for name in CLASSES}


@pytest.mark.parametrize("given, expected", [
    ({"mel": 0.4, "nv": 0.3}, "urgent"),                     # melanoma most likely
    ({"nv": 0.45, "mel": 0.5}, "urgent"),                    # melanoma at its threshold
    ({"bcc": 0.5, "nv": 0.45}, "keratinocyte"),              # keratinocyte cancer most likely
    ({"akiec": 0.5, "bkl": 0.45}, "keratinocyte"),
    ({"nv": 0.5, "bcc": 0.25, "akiec": 0.2}, "keratinocyte"),  # BCC + AKIEC above 0.45
    ({"nv": 0.7, "mel": 0.2, "bkl": 0.08}, "review"),        # benign but malignancy not excluded
    ({"nv": 0.94, "mel": 0.01}, "monitor"),                   # confidently benign
])
def test_rules(given, expected):
    assert assess_risk(probabilities(**given), THRESHOLDS) == expected


def test_the_melanoma_pathway_is_named_only_when_melanoma_drives_the_decision():
    """A high malignant probability made of BCC and AKIEC is a keratinocyte referral, not the
    melanoma pathway (what the old single threshold did)."""
    case = probabilities(nv=0.35, bcc=0.3, akiec=0.3, mel=0.01)
    assert sum(case[name] for name in MALIGNANT_CLASSES) >= THRESHOLDS["urgent_malignant"]
    assert assess_risk(case, THRESHOLDS) == "keratinocyte"


def test_a_declined_image_is_indeterminate_whatever_its_probabilities():
    assert assess_risk(probabilities(mel=0.9), THRESHOLDS, declined=True) == "indeterminate"


def test_a_card_without_the_class_thresholds_falls_back_to_its_malignant_one():
    old_card = {"urgent_malignant": 0.6, "monitor_max_malignant": 0.2}
    assert assess_risk(probabilities(nv=0.35, mel=0.6), old_card) == "urgent"
    assert assess_risk(probabilities(nv=0.39, bcc=0.35, akiec=0.25), old_card) == "keratinocyte"


distributions = st.lists(st.floats(0.0, 1.0), min_size=len(CLASSES), max_size=len(CLASSES)).filter(
    lambda values: sum(values) > 1e-3).map(lambda values: {name: v / sum(values) for name, v in zip(CLASSES, values)})


@settings(max_examples=300, deadline=None)
@given(distributions, st.sampled_from([THRESHOLDS, SHIPPED_THRESHOLDS,
                                        {**THRESHOLDS, "monitor_max_malignant": 0.9}]))
def test_an_assessed_image_with_malignant_probability_at_least_half_is_never_monitored(case, thresholds):
    """Whatever the confidence (a low one is a flag, not an input here) and whatever a card says."""
    category = assess_risk(case, thresholds)
    assert category in CURRENT_CATEGORIES and category != "indeterminate"
    if sum(case[name] for name in MALIGNANT_CLASSES) >= 0.5:
        assert RISK_CATEGORIES[category].refers
    if category == "urgent":
        assert max(case, key=case.get) == "mel" or case["mel"] >= thresholds.get(
            "urgent_melanoma", thresholds["urgent_malignant"])


def test_every_category_has_a_label_and_an_action():
    assert set(CURRENT_CATEGORIES) <= set(RISK_CATEGORIES)
    assert all(c.label and c.action for c in RISK_CATEGORIES.values())
    assert RISK_CATEGORIES["indeterminate"].label == "Cannot assess - retake"
    assert "melanoma" not in RISK_CATEGORIES["keratinocyte"].action.lower()


def test_the_shipped_card_says_how_every_threshold_was_chosen():
    card = json.loads(DEFAULT_MODEL_CARD.read_text())
    assert set(card["threshold_rules"]) == set(card["thresholds"])
    assert card["thresholds"]["monitor_max_malignant"] < 0.5
