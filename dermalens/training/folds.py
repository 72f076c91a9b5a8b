"""Lesion-grouped k-fold cross-validation: every HAM10000 image gets an out-of-fold prediction.

    python -m dermalens.training.folds --data ../shared/data/ham10000 --out models/folds.csv

A single 15% validation split holds 15 dermatofibromas; its 95% interval on balanced accuracy
is about +-5 points, too wide to tell recipes apart. With k folds every image is validated once,
by the model that never saw its lesion. Lesions (never images) are dealt to folds, stratified by
diagnosis, with a fixed seed; the assignment is saved so every later run uses the same folds.
"""

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from dermalens.lesions import CLASSES
from dermalens.training import data

FOLDS = 5
SEED = 20261201


def assign_folds(rows: list[dict], folds: int = FOLDS, seed: int = SEED) -> dict[str, int]:
    """image_id -> fold in 0..folds-1; all images of a lesion share one fold.

    Within each diagnosis the lesions are shuffled (seeded) and dealt round-robin, starting at the
    fold that holds fewest images so far, so every fold gets its share of every class and folds
    differ in size by a handful of images. Rows without a lesion_id count as a lesion each.
    """
    lesion_dx, lesion_images = {}, {}
    for row in rows:
        lesion = row["lesion_id"] or row["image_id"]
        lesion_dx.setdefault(lesion, row["dx"])
        lesion_images[lesion] = lesion_images.get(lesion, 0) + 1
    rng = np.random.default_rng(seed)
    fold_of_lesion, sizes = {}, np.zeros(folds, int)
    for dx in CLASSES:
        lesions = sorted(lesion for lesion, label in lesion_dx.items() if label == dx)
        rng.shuffle(lesions)
        start = int(np.argmin(sizes))
        for index, lesion in enumerate(lesions):
            fold = (start + index) % folds
            fold_of_lesion[lesion] = fold
            sizes[fold] += lesion_images[lesion]
    return {row["image_id"]: fold_of_lesion[row["lesion_id"] or row["image_id"]] for row in rows}


def write_folds(path: Path, rows: list[dict], folds: dict[str, int]) -> None:
    """Save an assignment as CSV: image_id, lesion_id, dx, fold."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "lesion_id", "dx", "fold"])
        writer.writerows([row["image_id"], row["lesion_id"], row["dx"], folds[row["image_id"]]] for row in rows)


def read_folds(path: Path) -> dict[str, int]:
    """image_id -> fold, from a CSV written by `write_folds`."""
    with open(path, newline="") as handle:
        return {row["image_id"]: int(row["fold"]) for row in csv.DictReader(handle)}


def split_for_fold(folds: dict[str, int], fold: int) -> dict[str, str]:
    """The train/val split (`data.read_split` form) in which `fold` is validated."""
    return {image_id: "val" if assigned == fold else "train" for image_id, assigned in folds.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="HAM10000-style folder")
    parser.add_argument("--out", required=True, type=Path, help="CSV to write")
    parser.add_argument("--folds", type=int, default=FOLDS)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    rows = data.read_ham10000(args.data)
    folds = assign_folds(rows, args.folds, args.seed)
    write_folds(args.out, rows, folds)
    sizes = np.bincount(list(folds.values()), minlength=args.folds)
    print(f"{len(rows)} images in {args.folds} folds of {', '.join(map(str, sizes))} images; "
          f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
