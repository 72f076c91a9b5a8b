"""A tiny HAM10000-shaped dataset and helpers for the tests that train a small network on it."""

import csv
import json
import shutil

from dermalens.lesions import CLASSES
from tests.images import encode, lesion_array

COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (90, 50, 40),
           (160, 120, 200), (200, 100, 150)]


def make_dataset(folder, per_class=4):
    """A HAM10000-shaped folder: 200x150 JPEGs, one colour per class, 2 images per lesion."""
    (folder / "images").mkdir(parents=True)
    rows = []
    for class_index, dx in enumerate(CLASSES):
        for i in range(per_class):
            image_id = f"ISIC_{class_index}{i:03d}"
            array = lesion_array(200, 150, colour=COLOURS[class_index], seed=class_index * 100 + i)
            (folder / "images" / f"{image_id}.jpg").write_bytes(encode(array, "JPEG", quality=85))
            rows.append([f"HAM_{class_index}{i // 2}", image_id, dx, "histo",
                         "" if i == 0 else str(30 + 5 * i), "male" if i % 2 else "unknown",
                         "back" if i % 3 else "unknown"])
    with open(folder / "HAM10000_metadata.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"])
        writer.writerows(rows)
    return rows


def copy_weights_and_gate(trained, folder):
    """Copy the tiny model's weights and gate into folder; return its card to write there."""
    card = json.loads((trained / "models" / "tiny.json").read_text())
    for artefact in ("tiny.keras", card["gate"]["file"]):
        shutil.copy(trained / "models" / artefact, folder / artefact)
    return card
