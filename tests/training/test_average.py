"""`python -m dermalens.training.average`: several models' evaluated probabilities scored as one."""

import csv
import json

import numpy as np
import pytest

from dermalens.lesions import CLASSES
from dermalens.training import average, matched_monitor

MEL, NV = CLASSES.index("mel"), CLASSES.index("nv")


def write_member(folder, rows):
    """An evaluate output folder holding only predictions.csv: rows of (id, dx, declined, mel, nv)."""
    folder.mkdir()
    with open(folder / "predictions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "dx", "predicted", "indeterminate", "notice", *CLASSES])
        for image_id, dx, declined, mel, nv in rows:
            probabilities = np.zeros(len(CLASSES))
            probabilities[MEL], probabilities[NV] = mel, nv
            writer.writerow([image_id, dx, "mel" if mel > nv else "nv", int(declined), 0,
                             *(f"{p:.6f}" for p in probabilities)])
    return folder


def test_the_average_scores_the_mean_probability_of_each_image_across_members(tmp_path):
    # Each member gets one melanoma wrong; their average gets both right.
    first = write_member(tmp_path / "a", [("m1", "mel", 0, 0.9, 0.1), ("m2", "mel", 0, 0.4, 0.6),
                                          ("n1", "nv", 0, 0.2, 0.8)])
    second = write_member(tmp_path / "b", [("n1", "nv", 1, 0.1, 0.9), ("m2", "mel", 0, 0.9, 0.1),
                                           ("m1", "mel", 0, 0.45, 0.55)])
    assert average.main(["--predictions", str(first), "--predictions", str(second),
                         "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["n"] == 3
    assert report["recall"]["mel"] == report["recall"]["nv"] == report["balanced_accuracy"] == 1.0
    assert report["indeterminate_rate"] == pytest.approx(1 / 3)  # declined by any member
    assert report["members"] == [str(first), str(second)]
    with open(tmp_path / "out" / "predictions.csv", newline="") as handle:
        rows = {row["image_id"]: row for row in csv.DictReader(handle)}
    assert float(rows["m2"]["mel"]) == pytest.approx(0.65)
    assert rows["n1"]["indeterminate"] == "1"


@pytest.mark.parametrize("second_rows, message", [
    ([("m1", "mel", 0, 0.9, 0.1)], "same images"),
    ([("m1", "nv", 0, 0.9, 0.1), ("n1", "nv", 0, 0.1, 0.9)], "labels some images differently"),
    ([("m1", "mole", 0, 0.9, 0.1), ("n1", "nv", 0, 0.1, 0.9)], "unknown classes mole"),
    ([("m1", "mel", 0, 0.9, 0.1), ("m1", "mel", 0, 0.9, 0.1)], "more than once"),
])
def test_members_that_disagree_on_the_images_are_refused_and_nothing_is_written(tmp_path, capsys,
                                                                                 second_rows, message):
    first = write_member(tmp_path / "a", [("m1", "mel", 0, 0.9, 0.1), ("n1", "nv", 0, 0.1, 0.9)])
    second = write_member(tmp_path / "b", second_rows)
    assert average.main(["--predictions", str(first), "--predictions", str(second),
                         "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_one_member_or_a_folder_without_predictions_is_refused(tmp_path, capsys):
    first = write_member(tmp_path / "a", [("m1", "mel", 0, 0.9, 0.1)])
    assert average.main(["--predictions", str(first), "--out", str(tmp_path / "out")]) == 2
    (tmp_path / "empty").mkdir()
    assert average.main(["--predictions", str(first), "--predictions", str(tmp_path / "empty"),
                         "--out", str(tmp_path / "out")]) == 2
    assert "no predictions.csv" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def write_reference_card(path):
    """A model card that monitors none of its melanomas and half of its nevi."""
    table = {"melanoma": {"urgent": 2}, "malignant": {"urgent": 2}, "benign": {"monitor": 2, "review": 2}}
    path.write_text(json.dumps({"validation": {"risk_by_truth": table}}))
    return path


POOL = [("m1", "mel", 0, 0.8, 0.2), ("m2", "mel", 0, 0.6, 0.4), ("m3", "mel", 0, 0.3, 0.7),
        ("n1", "nv", 0, 0.1, 0.9), ("n2", "nv", 0, 0.02, 0.98), ("n3", "nv", 0, 0.2, 0.8),
        ("n4", "nv", 0, 0.01, 0.99), ("n5", "nv", 1, 0.05, 0.95)]


@pytest.mark.parametrize("fit_risk", [True, False])
def test_fit_risk_gives_the_average_thresholds_that_matched_monitor_holds(tmp_path, capsys, fit_risk):
    first = write_member(tmp_path / "a", POOL)
    second = write_member(tmp_path / "b", [(i, dx, d, (mel + 0.1) / 1.1, nv / 1.1) for i, dx, d, mel, nv in POOL])
    assert average.main(["--predictions", str(first), "--predictions", str(second),
                         "--out", str(tmp_path / "out"), *(["--fit-risk"] if fit_risk else [])]) == 0
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert ("fitted_risk" in report) == fit_risk
    capsys.readouterr()
    reference = write_reference_card(tmp_path / "card.json")
    code = matched_monitor.main(["--predictions", str(tmp_path / "out"), "--reference", str(reference)])
    if not fit_risk:
        assert code == 2 and "no risk thresholds" in capsys.readouterr().err
        return
    assert code == 0
    fitted = report["fitted_risk"]["thresholds"]
    matched = json.loads(capsys.readouterr().out)
    assert matched["thresholds_held"] == {name: value for name, value in fitted.items()
                                          if name != "monitor_max_malignant"}
    assert matched["matched"]["melanoma"]["monitored"] == 0
    assert set(report["fitted_risk"]["risk_by_truth"]) == {"melanoma", "malignant", "benign"}
