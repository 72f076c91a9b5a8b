"""How well the app's heatmap points at the lesion, on a labelled folder of images.

    python -m tools.heatmap_quality --images DIR --labels CSV [--out FILE.json]

DIR and CSV are as for `python -m dermalens.evaluate`. HAM10000 has no lesion masks here, so a
proxy stands in: Otsu thresholding of the analysed square's blurred grey levels, keeping the
dark region nearest its centre; images where that region covers under 3% or over 70% of the
square (no plausible lesion found) are left out. For the heatmap the app serves (through
`KerasClassifier.analyse`) and, as a yardstick, a fixed blob centred on the square, it reports:

- pointing: how often the heatmap's peak lies on the lesion;
- share on lesion: the fraction of the heatmap's total that lies on the lesion;
- IoU: the overlap of the area above half the peak with the lesion;
- deletion drop: how far the top class's calibrated probability falls when the hottest fifth of
  the square is blurred away (a map of what the network used makes this larger).
"""

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from dermalens.config import DEFAULT_MODEL_CARD
from dermalens.lesions import CLASSES

# The lesion proxy is implausible outside these shares of the analysed square.
LESION_SHARE_RANGE = (0.03, 0.70)
# The deletion test blurs this share of the square, the heatmap's hottest part.
DELETED_SHARE = 0.2
DELETION_BLUR_SIGMA = 8.0


def lesion_mask(square: np.ndarray) -> np.ndarray | None:
    """(S, S, 3) uint8 RGB -> (S, S) bool mask of the dark region nearest the centre (Otsu on the
    blurred grey levels), or None when there is none or it covers an implausible share."""
    grey = cv2.GaussianBlur(cv2.cvtColor(square, cv2.COLOR_RGB2GRAY), (7, 7), 0)
    _, dark = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    count, components, stats, centroids = cv2.connectedComponentsWithStats(dark.astype(np.uint8))
    if count < 2:
        return None
    centre = np.array(dark.shape[::-1]) / 2.0
    # Nearest the centre, with larger regions counted nearer (a big lesion beats a speck).
    nearest = min(range(1, count), key=lambda index: np.hypot(*(centroids[index] - centre))
                  - 0.5 * np.sqrt(stats[index, cv2.CC_STAT_AREA]))
    mask = components == nearest
    low, high = LESION_SHARE_RANGE
    return mask if low <= mask.mean() <= high else None


def centred_blob(size: int) -> np.ndarray:
    """A fixed heatmap peaking at the square's centre: what a map that ignores the image scores."""
    from dermalens.inference import upsample_heatmap

    window = np.hanning(7)[1:-1]
    return upsample_heatmap(np.outer(window, window), size)


def agreement(heatmap: np.ndarray, mask: np.ndarray) -> dict:
    """Pointing (bool), share on lesion and IoU of a [0, 1] heatmap with a bool mask, same shape."""
    peak = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    hot = heatmap >= 0.5 * float(heatmap.max())
    total = float(heatmap.sum())
    return {"pointing": bool(mask[peak]),
            "share_on_lesion": float(heatmap[mask].sum()) / total if total > 0 else 0.0,
            "iou": float((hot & mask).sum()) / max(int((hot | mask).sum()), 1)}


def hottest_blurred(image: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """The network input `image` (S, S, 3) float with its hottest DELETED_SHARE (by `heatmap`)
    replaced by a heavily blurred copy of itself."""
    hottest = heatmap >= np.quantile(heatmap, 1.0 - DELETED_SHARE)
    blurred = cv2.GaussianBlur(image, (0, 0), DELETION_BLUR_SIGMA)
    return np.where(hottest[..., None], blurred, image).astype(np.float32)


def measure(classifier, images: Path, rows: list[dict], progress=None) -> dict:
    """Mean pointing, share on lesion, IoU and deletion drop of the served heatmap and of the
    centred blob over the images with a plausible lesion mask; also n, how many images were
    left out for want of one (`left_out`) and how many were missing or unreadable (`unreadable`)."""
    from dermalens import preprocessing
    from dermalens.training.data import read_labelled_image

    size = classifier.info.input_size
    blob = centred_blob(size)
    scores = {"served": [], "centred_blob": []}
    left_out = unreadable = 0
    for row in (progress(rows) if progress else rows):
        rgb, _ = read_labelled_image(images, row["image_id"])
        if rgb is None:
            unreadable += 1
            continue
        prepared = preprocessing.prepare(rgb)
        square = preprocessing.network_input(prepared, size).pixels
        mask = lesion_mask(square)
        if mask is None:
            left_out += 1
            continue
        prediction = classifier.analyse(prepared, row["age"], row["sex"], row["site"])
        top_probability = prediction.probabilities[prediction.heatmap_class]
        top = CLASSES.index(prediction.heatmap_class)
        image = preprocessing.normalise(square)
        metadata = preprocessing.encode_metadata(row["age"], row["sex"], row["site"])[None]
        for name, heatmap in (("served", prediction.heatmap), ("centred_blob", blob)):
            after = float(classifier.probabilities(hottest_blurred(image, heatmap)[None], metadata)[0, top])
            scores[name].append({**agreement(heatmap, mask), "deletion_drop": top_probability - after})
    result = {"n": len(scores["served"]), "left_out": left_out, "unreadable": unreadable}
    for name, per_image in scores.items():
        result[name] = {key: float(np.mean([score[key] for score in per_image])) if per_image else None
                        for key in ("pointing", "share_on_lesion", "iou", "deletion_drop")}
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", required=True, type=Path)
    parser.add_argument("--labels", required=True, type=Path)
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--model-card", default=str(DEFAULT_MODEL_CARD))
    args = parser.parse_args(argv)
    from tqdm import tqdm

    from dermalens.training.data import read_labels
    from dermalens.inference import KerasClassifier, ModelLoadError

    try:
        rows = read_labels(args.labels)
        classifier = KerasClassifier(args.model_card)
    except (OSError, ValueError, ModelLoadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result = measure(classifier, args.images, rows,
                     progress=lambda items: tqdm(items, desc="heatmaps", unit="img", mininterval=5))
    result["model"] = {"name": classifier.info.name, "version": classifier.info.version}
    print(f"images with a plausible lesion mask: {result['n']} (left out {result['left_out']}; "
          f"missing or unreadable {result['unreadable']})")
    if not result["n"]:
        print(f"error: no image in {args.images} had a plausible lesion mask", file=sys.stderr)
        return 2
    for name in ("served", "centred_blob"):
        figures = result[name]
        print(f"  {name:13s} pointing {figures['pointing']:.1%}  share on lesion "
              f"{figures['share_on_lesion']:.3f}  IoU {figures['iou']:.3f}  "
              f"deletion drop {figures['deletion_drop']:.3f}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
