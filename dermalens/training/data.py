"""Labelled images on disk: one reader for HAM10000-style label files, the lesion-grouped
split, and decoding through the app's own image pipeline.

A label file is a CSV with `image_id` and `dx` and optionally `lesion_id`, `age`, `sex` and
`localization` (HAM10000 vocabulary; empty or "unknown" is unknown): HAM10000's own
`HAM10000_metadata.csv`, PH2's `labels.csv`, or any folder prepared the same way.
"""

import csv
from pathlib import Path

import numpy as np

from dermalens import preprocessing
from dermalens.assessment import decode_for_analysis
from dermalens.lesions import BODY_SITES, CLASSES, SEXES

HAM10000_LABELS = "HAM10000_metadata.csv"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")


def read_labels(path: Path, limit: int | None = None) -> list[dict]:
    """Rows of a label file as dicts: `image_id`, `lesion_id` (None when absent), `dx`, `age`
    (int years or None), `sex` and `site` (a value of `lesions.SEXES` / `BODY_SITES`, or None).

    :raise ValueError: a missing column, or a dx outside the seven classes.
    """
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"image_id", "dx"} <= set(rows[0]):
        raise ValueError(f"{path} needs the columns image_id and dx")
    parsed = []
    for row in rows[:limit] if limit else rows:
        if row["dx"] not in CLASSES:
            raise ValueError(f"unknown dx {row['dx']!r} for {row['image_id']}")
        age_text = (row.get("age") or "").strip()
        try:
            age = int(float(age_text)) if age_text else None
        except ValueError:
            age = None
        parsed.append({"image_id": row["image_id"], "lesion_id": row.get("lesion_id") or None,
                       "dx": row["dx"], "age": age,
                       "sex": row.get("sex") if row.get("sex") in SEXES else None,
                       "site": row.get("localization") if row.get("localization") in BODY_SITES else None})
    return parsed


def read_ham10000(data_dir: Path, limit: int | None = None) -> list[dict]:
    """`read_labels` of a HAM10000-style folder's metadata file."""
    return read_labels(data_dir / HAM10000_LABELS, limit)


def split_by_lesion(rows: list[dict], val_fraction: float, seed: int) -> dict[str, str]:
    """image_id -> "train" | "val"; every image of a lesion lands on the same side.

    Lesions are stratified by diagnosis so each class keeps `val_fraction` of its lesions (at
    least one) in validation.
    """
    lesion_dx = {}
    for row in rows:
        lesion_dx.setdefault(row["lesion_id"], row["dx"])
    rng = np.random.default_rng(seed)
    val_lesions = set()
    for dx in CLASSES:
        lesions = sorted(lesion for lesion, label in lesion_dx.items() if label == dx)
        rng.shuffle(lesions)
        count = max(1, round(len(lesions) * val_fraction)) if len(lesions) > 1 else 0
        val_lesions.update(lesions[:count])
    return {row["image_id"]: "val" if row["lesion_id"] in val_lesions else "train" for row in rows}


def write_split(path: Path, rows: list[dict], split: dict[str, str]) -> None:
    """Save a split (`split_by_lesion`) as CSV: image_id, lesion_id, dx, split."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "lesion_id", "dx", "split"])
        writer.writerows([row["image_id"], row["lesion_id"], row["dx"], split[row["image_id"]]]
                         for row in rows)


def read_split(path: Path) -> dict[str, str]:
    """image_id -> "train" or "val", from a split CSV written by `write_split`."""
    with open(path, newline="") as handle:
        return {row["image_id"]: row["split"] for row in csv.DictReader(handle)}


def find_image(folder: Path, image_id: str) -> Path | None:
    """The file of `image_id` in `folder` (any of IMAGE_SUFFIXES), or None."""
    for suffix in IMAGE_SUFFIXES:
        candidate = folder / f"{image_id}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def read_labelled_image(folder: Path, image_id: str) -> tuple[np.ndarray | None, str | None]:
    """(the image `image_id` in `folder` decoded as the app decodes an upload, None), or
    (None, why not): no such file, or the app would refuse it."""
    path = find_image(folder, image_id)
    if path is None:
        return None, "image file not found"
    try:
        return decode_for_analysis(path.read_bytes()), None
    except preprocessing.InvalidImage as error:
        return None, str(error)


def load_arrays(data_dir: Path, rows: list[dict], size: int, canvas: int,
                served: np.ndarray | None = None):
    """Decode and prepare every image once, through the app's own pipeline.

    Returns (canvases uint8 (n, canvas, canvas, 3): the network input at the canvas size,
    inputs float32 (m, size, size, 3): the network input exactly as served, for the rows where
    the boolean mask `served` is true, in row order (all n rows when it is None), metadata
    float32 (n, METADATA_SIZE), labels int (n,)). Training augments the canvases and validates
    on the inputs: asking inputs only for the validation rows saves n - m float32 squares.
    """
    from tqdm import tqdm

    served = np.ones(len(rows), bool) if served is None else np.asarray(served, bool)
    canvases = np.zeros((len(rows), canvas, canvas, 3), np.uint8)
    inputs = np.zeros((int(served.sum()), size, size, 3), np.float32)
    metadata = np.zeros((len(rows), preprocessing.METADATA_SIZE), np.float32)
    input_index = 0
    for index, row in enumerate(tqdm(rows, desc="decoding", unit="img", mininterval=5)):
        rgb = preprocessing.decode_image((data_dir / "images" / f"{row['image_id']}.jpg").read_bytes())
        prepared = preprocessing.prepare(rgb)
        canvases[index] = preprocessing.network_input(prepared, canvas).pixels
        if served[index]:
            inputs[input_index] = preprocessing.network_input(prepared, size).tensor
            input_index += 1
        metadata[index] = preprocessing.encode_metadata(row["age"], row["sex"], row["site"])
    labels = np.array([CLASSES.index(row["dx"]) for row in rows])
    return canvases, inputs, metadata, labels


def load_views(data_dir: Path, rows: list[dict], view_count: int, size: int) -> np.ndarray:
    """Views 0..view_count-1 (`device_views.render_view`) of every row's image, each seen through the
    app's pipeline at the network's input `size` (`prepare`, then `network_input`) exactly as an
    upload of the view would be: uint8 (n, view_count, size, size, 3)."""
    from tqdm import tqdm

    from dermalens.training.device_views import render_view

    out = np.zeros((len(rows), view_count, size, size, 3), np.uint8)
    for index, row in enumerate(tqdm(rows, desc="rendering views", unit="img", mininterval=5)):
        rgb = preprocessing.decode_image((data_dir / "images" / f"{row['image_id']}.jpg").read_bytes())
        for view in range(view_count):
            rendered = preprocessing.prepare(render_view(rgb, row["image_id"], view))
            out[index, view] = preprocessing.network_input(rendered, size).pixels
    return out
