"""Refresh tests/fixtures/golden.json from the shipped model (run after retraining):

    python -m tests.make_golden
"""

import csv
import json

from dermalens import analysis_service
from dermalens.config import DEFAULT_MODEL_CARD
from dermalens.inference import KerasClassifier
from dermalens.lesions import CLASSES
from tests.test_shipped_model import FIXTURES, GOLDEN

if __name__ == "__main__":
    classifier = KerasClassifier(DEFAULT_MODEL_CARD)
    probabilities = {}
    with open(FIXTURES / "labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            rgb = analysis_service.decode_for_analysis((FIXTURES / f"{row['image_id']}.jpg").read_bytes())
            prediction = classifier.analyse(rgb, age=int(row["age"]), sex=row["sex"],
                                            site=row["localization"], explain=False)
            probabilities[row["image_id"]] = [round(prediction.probabilities[c], 6) for c in CLASSES]
    GOLDEN.write_text(json.dumps({"sha256": classifier.info.sha256, "classes": list(CLASSES),
                                  "probabilities": probabilities}, indent=2) + "\n")
    print(f"wrote {GOLDEN}")
