"""The distillation teacher's own figures on a labelled folder: what its students can aim at.

    python -m tools.teacher_anchor --images DIR --labels CSV [--out FILE.json]

DIR and CSV are as for `python -m dermalens.evaluate`. The teacher (sklesion's Xception, as
`dermalens.training.teacher` loads it; install it with `pip install --no-deps sklesion==0.2.2`)
is run on every image twice, with the row's age, sex and site:

- served: the square the app analyses, prepared exactly as an upload (`preprocessing.prepare`:
  reduced to the training copies' resolution, a round field filled in), resized to the teacher's
  input. A student trained by function matching sees only this, so the teacher's figures here
  are what distillation could reach; the student's own figures on the same folder (`evaluate`)
  show what it leaves behind.
- full: the decoded image's centre square at full resolution, as the teacher was trained.

Prints and writes (--out) the classification report of each (`metrics.classification_report`,
uncalibrated, no gate, no test-time augmentation). Images the app would refuse are skipped and
counted.
"""

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from dermalens import preprocessing
from dermalens.lesions import CLASSES
from dermalens.training import data, metrics, teacher

INPUTS = ("served", "full")


def teacher_inputs(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """{input name: (TEACHER_SIZE, TEACHER_SIZE, 3) uint8} for one decoded image."""
    height, width = rgb.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    size = (teacher.TEACHER_SIZE, teacher.TEACHER_SIZE)
    return {"served": preprocessing.prepare(rgb).resized_region(teacher.TEACHER_SIZE),
            "full": cv2.resize(rgb[top:top + side, left:left + side], size, interpolation=cv2.INTER_AREA)}


def measure(model, images: Path, rows: list[dict]) -> dict:
    """{"served": report, "full": report, "skipped": {image_id: why}} for the labelled rows."""
    labels, probabilities, skipped = [], {name: [] for name in INPUTS}, {}
    for row in rows:
        rgb, why = data.read_labelled_image(images, row["image_id"])
        if rgb is None:
            skipped[row["image_id"]] = why
            continue
        squares = teacher_inputs(rgb)
        batch = np.stack([squares[name] for name in INPUTS]).astype(np.float32)
        metadata = np.repeat(teacher.teacher_metadata(row["age"], row["sex"], row["site"])[None], len(INPUTS), 0)
        outputs = np.asarray(model.predict_on_batch([batch, metadata]), np.float64)
        for name, output in zip(INPUTS, outputs):
            probabilities[name].append(output)
        labels.append(CLASSES.index(row["dx"]))
    if not labels:
        raise ValueError(f"{images}: none of the labelled images could be read")
    return {**{name: metrics.classification_report(labels, probabilities[name]) for name in INPUTS},
            "skipped": skipped}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", required=True, type=Path)
    parser.add_argument("--labels", required=True, type=Path)
    parser.add_argument("--out", type=Path, help="write the reports as JSON")
    args = parser.parse_args(argv)
    try:
        result = measure(teacher.load_teacher(), args.images, data.read_labels(args.labels))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name in INPUTS:
        report = result[name]
        recalls = ", ".join(f"{label} {value:.3f}" for label, value in report["recall"].items() if value is not None)
        print(f"{name}: n {report['n']}, balanced accuracy {report['balanced_accuracy']:.3f} ({recalls}), "
              f"AUC malignant {report['auc_malignant'] or float('nan'):.3f}, "
              f"AUC melanoma {report['auc_melanoma'] or float('nan'):.3f}")
    if result["skipped"]:
        print(f"skipped {len(result['skipped'])} images the app would refuse")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
