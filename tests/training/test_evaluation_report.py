"""What `dermalens.evaluate` reports about the images the gate declines."""

import numpy as np
import pytest

from dermalens import gate
from dermalens.training import evaluate


def test_every_gate_reason_maps_back_to_its_key():
    for key, template in gate.REASONS.items():
        worded = template.format(width=100, height=80, confidence=0.5, top=0.3)
        assert evaluate.reason_key(worded) == key
    with pytest.raises(ValueError, match="not a gate reason"):
        evaluate.reason_key("Something else entirely.")


def test_the_report_gives_the_share_of_images_declined_for_each_reason():
    results = {"labels": np.array([0, 1, 2, 3]), "probabilities": np.eye(7)[[0, 1, 2, 3]],
               "skipped": [], "ids": list("abcd"), "indeterminate": np.array([True, True, False, False]),
               "noticed": np.zeros(4, bool),
               "declined_by": [["out_of_scope", "too_dark"], ["too_dark"], [], []]}
    report = evaluate.summarise(results)
    assert report["declined_by_reason"] == {"out_of_scope": 0.25, "too_dark": 0.5}
    assert evaluate.summarise({**results, "declined_by": [[]] * 4})["declined_by_reason"] == {}
