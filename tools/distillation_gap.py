"""How closely a distilled network matches its teacher, on views it learnt and on views it never saw.

    python -m tools.distillation_gap --model-card CARD --teacher-views FILE --data DIR \
        [--images 400] [--seed 0]

CARD was trained by function matching (`train --teacher-views FILE`) and validates on its own
split (`NAME.split.csv` beside it). For up to --images images of its training side and as many of
its validation side, every cached view (`device_views.render_view`) goes through the app's
pipeline and the card's networks as served (calibrated, with test-time augmentation). For each
side and for view 0 (the image itself) apart from the re-rendered views it prints the mean
Kullback-Leibler divergence from the teacher's cached probabilities to the network's, and how
often the two name the same most likely class.

Read it so: a network that matches its training views much better than the unseen ones has
learnt those fixed views by heart, and more views per image would help; one that matches both
about equally, and not closely, is short of training or of capacity.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from dermalens import preprocessing
from dermalens.training import data, teacher

SIDES = ("train", "val")
EPSILON = 1e-6


def divergence(teacher_probabilities: np.ndarray, probabilities: np.ndarray) -> dict:
    """{"kl": ..., "agreement": ...} for view 0 and the other views, of (n, views, classes)
    teacher and network probabilities (KL from the teacher to the network, in nats)."""
    target = np.clip(teacher_probabilities, EPSILON, 1.0)
    kl = (target * (np.log(target) - np.log(np.clip(probabilities, EPSILON, 1.0)))).sum(axis=-1)
    agree = teacher_probabilities.argmax(axis=-1) == probabilities.argmax(axis=-1)
    return {"view 0": {"kl": float(kl[:, 0].mean()), "agreement": float(agree[:, 0].mean())},
            "other views": {"kl": float(kl[:, 1:].mean()) if kl.shape[1] > 1 else None,
                            "agreement": float(agree[:, 1:].mean()) if kl.shape[1] > 1 else None}}


def load_classifier(card_path: Path):
    from dermalens.inference import KerasClassifier

    return KerasClassifier(card_path)


def measure(classifier, cache: dict, data_dir: Path, rows: list[dict], input_size: int) -> dict:
    """`divergence` of the classifier's served probabilities on every cached view of `rows`."""
    index = {image_id: position for position, image_id in enumerate(cache["image_ids"])}
    view_count = cache["probabilities"].shape[1]
    pixels = data.load_views(data_dir, rows, view_count, input_size)
    metadata = np.stack([preprocessing.encode_metadata(row["age"], row["sex"], row["site"]) for row in rows])
    probabilities = np.stack([
        classifier.probabilities(preprocessing.normalise(pixels[:, view]), metadata) for view in range(view_count)],
        axis=1)
    taught = np.asarray(cache["probabilities"], np.float64)[[index[row["image_id"]] for row in rows]]
    return divergence(taught, probabilities)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-card", required=True, type=Path)
    parser.add_argument("--teacher-views", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path, help="HAM10000-style folder")
    parser.add_argument("--images", type=int, default=400, help="images per side")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    classifier = load_classifier(args.model_card)
    card = classifier.info.card
    split = data.read_split(args.model_card.with_name(f"{card['name']}.split.csv"))
    cache = teacher.read_cache(args.teacher_views)
    view_count = cache["probabilities"].shape[1]
    cached = set(cache["image_ids"])
    rows = [row for row in data.read_ham10000(args.data) if row["image_id"] in cached]
    np.random.default_rng(args.seed).shuffle(rows)
    for side in SIDES:
        chosen = [row for row in rows if split.get(row["image_id"]) == side][:args.images]
        if not chosen:
            print(f"error: no {side} images of {args.model_card} in {args.teacher_views}", file=sys.stderr)
            return 2
        result = measure(classifier, cache, args.data, chosen, card["input_size"])
        print(f"{side} ({len(chosen)} images, {view_count} views): " + "; ".join(
            f"{views}: KL {figures['kl']:.3f}, agreement {figures['agreement']:.3f}"
            for views, figures in result.items() if figures["kl"] is not None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
