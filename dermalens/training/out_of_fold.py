"""The out-of-fold yardstick: each fold's model run on the fold it never trained on, pooled.

    python -m dermalens.training.out_of_fold --data ../shared/data/ham10000 \
        --folds models/dermalens-folds.csv --model-card FOLD0.json [--model-card FOLD1.json ...] \
        --out DIR [--carry-over-preprocessing VERSION]

Each model card must validate on exactly one fold of FOLDS (the `NAME.split.csv` beside it, as
`train --folds FOLDS --fold K` writes it), and no two cards on the same fold; every card is
checked, weights and SHA-256 included, before any image is run. Each fold's images then go
through the app's own path (`evaluate.evaluate`: gate, the card's temperature, test-time
augmentation, risk rules) and the predictions are pooled. With all five folds every HAM10000
image has a prediction from a model that never saw its lesion, and the pooled balanced accuracy
has an interval about half as wide as one fold's.

Writes to DIR what `dermalens.evaluate` writes (`metrics.json`, `predictions.csv` with each
image's fold, the plots); `metrics.json` adds `out_of_fold`: the folds covered, the images
covered out of all in FOLDS, each fold's own figures, and `fitted_risk`: the risk thresholds and
minimum confidence that `calibrate` would choose if fitted on the pooled predictions rather than
on one card's fold, with how the lesions fall under them. Each card's temperature was fitted on
its own fold, so the pooled ECE leans slightly optimistic (one parameter per fold).

With --carry-over-preprocessing V, cards of an earlier preprocessing version V are run too, under
this code's preprocessing, as `training.ensemble --carry-over-preprocessing` serves them: the
pool then shows such networks as the app would serve them.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from dermalens.training import calibrate, data, folds as folds_module, metrics
from dermalens.training.evaluate import (add_carry_over_option, evaluate, print_summary, summarise,
                                         write_outputs)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="HAM10000-style folder")
    parser.add_argument("--folds", required=True, type=Path, help="fold assignment (make folds)")
    parser.add_argument("--model-card", required=True, type=Path, action="append", dest="model_cards",
                        help="a model card trained with --fold K; once per fold")
    parser.add_argument("--out", required=True, type=Path)
    add_carry_over_option(parser)
    return parser.parse_args(argv)


def fold_of_card(card_path: Path, fold_of_image: dict[str, int]) -> int:
    """The fold a model card validated on: the one whose images are exactly its split's "val" side.

    :raises ValueError: the card, or its split file, is missing or unreadable, or its validation
        images are not one fold of the assignment.
    """
    try:
        card = json.loads(card_path.read_text())
        split = data.read_split(card_path.with_name(f"{card['name']}.split.csv"))
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{card_path}: not a model card with its split beside it ({error})") from error
    validated = {image_id for image_id, side in split.items() if side == "val"}
    for fold in sorted(set(fold_of_image.values())):
        if validated == {image_id for image_id, assigned in fold_of_image.items() if assigned == fold}:
            return fold
    raise ValueError(f"{card_path}: its {len(validated)} validation images are not one fold of the "
                     "assignment (train it with --folds and --fold on the same folds file)")


def pool(by_fold: dict[int, dict]) -> dict:
    """One `evaluate.evaluate` result from several, in fold order, with each image's fold
    under "folds"."""
    order = sorted(by_fold)
    pooled = {key: np.concatenate([by_fold[fold][key] for fold in order])
              for key in ("labels", "probabilities", "indeterminate", "uncertain", "noticed")}
    for key in ("risk", "declined_by", "skipped", "ids"):
        pooled[key] = [item for fold in order for item in by_fold[fold][key]]
    pooled["folds"] = np.concatenate([np.full(len(by_fold[fold]["labels"]), fold) for fold in order])
    return pooled


def fold_figures(results: dict) -> dict:
    """The figures that show how far the folds disagree (null where undefined)."""
    report = metrics.classification_report(results["labels"], results["probabilities"])
    return {"n": report["n"], "balanced_accuracy": report["balanced_accuracy"],
            "melanoma_recall": report["recall"]["mel"], "auc_malignant": report["auc_malignant"],
            "ece": report["ece"],
            "indeterminate_rate": float(results["indeterminate"].mean()) if report["n"] else 0.0}


def main(argv=None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    from dermalens.inference import KerasClassifier, ModelLoadError

    try:
        fold_of_image = folds_module.read_folds(args.folds)
        cards = {}
        for card_path in args.model_cards:
            fold = fold_of_card(card_path, fold_of_image)
            if fold in cards:
                raise ValueError(f"{card_path} and {cards[fold][0]} both validate on fold {fold}")
            cards[fold] = (card_path, KerasClassifier(card_path, args.accepted_versions))
        rows = data.read_ham10000(args.data)
    except (OSError, ValueError, KeyError, ModelLoadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    by_fold = {}
    for fold, (card_path, classifier) in sorted(cards.items()):
        fold_rows = [row for row in rows if fold_of_image.get(row["image_id"]) == fold]
        by_fold[fold] = evaluate(classifier, args.data / "images", fold_rows,
                                 progress=lambda items: tqdm(items, desc=f"fold {fold}", unit="img"))
    results = pool(by_fold)
    report = summarise(results)
    # The gate's declines count as flagged, as in calibrate.
    _, fitted_risk = calibrate.fit_risk(results["labels"], results["probabilities"],
                                        results["indeterminate"], report["balanced_accuracy"])
    report["out_of_fold"] = {
        "folds": sorted(by_fold), "images": int(len(results["labels"])), "of": len(fold_of_image),
        "model_cards": {str(fold): str(path) for fold, (path, _) in sorted(cards.items())},
        "per_fold": {str(fold): fold_figures(result) for fold, result in sorted(by_fold.items())},
        "fitted_risk": fitted_risk,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_outputs(args.out, report, results)
    coverage = report["out_of_fold"]
    print(f"out of fold: folds {', '.join(map(str, coverage['folds']))}; {coverage['images']} of "
          f"{coverage['of']} images")
    for fold, figures in coverage["per_fold"].items():
        print(f"  fold {fold}: n={figures['n']}  " + "  ".join(
            f"{name.replace('_', ' ')} {'n/a' if figures[name] is None else format(figures[name], '.3f')}"
            for name in ("balanced_accuracy", "melanoma_recall", "auc_malignant", "ece")))
    print(f"risk thresholds fitted out of fold: {coverage['fitted_risk']['thresholds']}")
    print_summary(report)
    print(f"written to {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
