"""`python -m dermalens.training.matched_monitor`: benign lesions monitored at a reference's misses."""

import csv
import json

import pytest

from dermalens.lesions import CLASSES
from dermalens.training import matched_monitor

# Pathway thresholds high enough that every lesion below is left to the monitor threshold.
HELD = {"urgent_melanoma": 0.9, "referral_keratinocyte": 0.9, "urgent_malignant": 0.9,
        "monitor_max_malignant": 0.1, "min_confidence": 0.5}


def write_predictions(folder, rows, thresholds=HELD):
    """An out_of_fold output: rows of (id, dx, declined, melanoma probability); the rest is nevus."""
    folder.mkdir()
    with open(folder / "predictions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "dx", "predicted", "indeterminate", "notice", *CLASSES])
        for image_id, dx, declined, mel in rows:
            probabilities = {name: 0.0 for name in CLASSES} | {"mel": mel, "nv": 1 - mel}
            writer.writerow([image_id, dx, "nv", int(declined), 0, *(probabilities[name] for name in CLASSES)])
    (folder / "metrics.json").write_text(json.dumps({"out_of_fold": {"fitted_risk": {"thresholds": thresholds}}}))
    return folder


def write_card(path, melanoma_monitored, melanomas, benign_monitored, benign):
    table = {"melanoma": {"monitor": melanoma_monitored, "urgent": melanomas - melanoma_monitored},
             "malignant": {"monitor": melanoma_monitored, "urgent": melanomas - melanoma_monitored},
             "benign": {"monitor": benign_monitored, "review": benign - benign_monitored}}
    path.write_text(json.dumps({"validation": {"risk_by_truth": table}}))
    return path


LESIONS = [("m1", "mel", 0, 0.05), ("m2", "mel", 0, 0.30),
           ("n1", "nv", 0, 0.01), ("n2", "nv", 0, 0.02), ("n3", "nv", 0, 0.10), ("n4", "nv", 0, 0.40),
           ("n5", "nv", 1, 0.01)]


def test_the_monitor_threshold_is_the_highest_that_misses_no_larger_share_than_the_reference(tmp_path, capsys):
    predictions = write_predictions(tmp_path / "pool", LESIONS)
    reference = write_card(tmp_path / "card.json", melanoma_monitored=1, melanomas=2, benign_monitored=1, benign=4)
    assert matched_monitor.main(["--predictions", str(predictions), "--reference", str(reference)]) == 0
    report = json.loads(capsys.readouterr().out)
    matched = report["matched"]
    # Below 0.40 both melanomas would be monitored; at 0.30 only m1 is, with three nevi.
    assert matched["monitor_max_malignant"] == pytest.approx(0.30)
    assert (matched["melanoma"]["monitored"], matched["melanoma"]["of"]) == (1, 2)
    assert (matched["benign"]["monitored"], matched["benign"]["of"]) == (3, 5)  # n5 was declined
    assert report["reference_monitored"]["benign"]["share"] == pytest.approx(0.25)
    assert "monitor_max_malignant" not in report["thresholds_held"]


def test_a_reference_that_monitors_no_melanoma_leaves_none_monitored(tmp_path, capsys):
    predictions = write_predictions(tmp_path / "pool", LESIONS)
    reference = write_card(tmp_path / "card.json", melanoma_monitored=0, melanomas=2, benign_monitored=1, benign=4)
    assert matched_monitor.main(["--predictions", str(predictions), "--reference", str(reference)]) == 0
    matched = json.loads(capsys.readouterr().out)["matched"]
    assert matched["monitor_max_malignant"] == pytest.approx(0.05)
    assert matched["melanoma"]["monitored"] == 0
    assert matched["benign"]["monitored"] == 2


@pytest.mark.parametrize("reference_text, message", [
    ("not json", "not readable JSON"),
    (json.dumps({"name": "a card without validation"}), "neither a model card"),
    ("[]", "not a JSON object"),
    (json.dumps({"out_of_fold": 3, "validation": {"risk_by_truth": "all"}}), "neither a model card"),
])
def test_an_unusable_reference_is_refused(tmp_path, capsys, reference_text, message):
    predictions = write_predictions(tmp_path / "pool", LESIONS)
    (tmp_path / "reference.json").write_text(reference_text)
    assert matched_monitor.main(["--predictions", str(predictions),
                                 "--reference", str(tmp_path / "reference.json")]) == 2
    assert message in capsys.readouterr().err


def test_predictions_without_thresholds_are_refused(tmp_path, capsys):
    predictions = write_predictions(tmp_path / "pool", LESIONS, thresholds=None)
    reference = write_card(tmp_path / "card.json", melanoma_monitored=1, melanomas=2, benign_monitored=1, benign=4)
    assert matched_monitor.main(["--predictions", str(predictions), "--reference", str(reference)]) == 2
    assert "no risk thresholds" in capsys.readouterr().err
