"""Refresh tests/fixtures/golden.json from the shipped model (run after retraining):

    python -m tests.make_golden
"""

import json

from dermalens.config import DEFAULT_MODEL_CARD
from dermalens.inference import KerasClassifier
from dermalens.lesions import CLASSES
from tests.model.test_shipped_model import GOLDEN, analyse, fixture_rgb, fixture_rows, server_outputs

if __name__ == "__main__":
    classifier = KerasClassifier(DEFAULT_MODEL_CARD)
    probabilities = {}
    for row in fixture_rows():
        prediction = analyse(classifier, fixture_rgb(row["image_id"]), age=int(row["age"]), sex=row["sex"],
                             site=row["localization"], explain=False)
        probabilities[row["image_id"]] = [round(prediction.probabilities[c], 6) for c in CLASSES]
    uploads = {row["image_id"]: server_outputs(classifier, row) for row in fixture_rows()}
    GOLDEN.write_text(json.dumps({"sha256": classifier.info.sha256, "classes": list(CLASSES),
                                  "probabilities": probabilities, "uploads_1024x768": uploads},
                                 indent=2) + "\n")
    print(f"wrote {GOLDEN}")
