"""Assemble calibrated member networks into one servable ensemble model card.

    python -m dermalens.training.ensemble --data ../shared/data/ham10000 \
        --member models/candidates/A.json --member models/candidates/B.json \
        --name NAME --version VERSION --out models/ \
        --out-of-fold DIR [--misses-as REFERENCE_CARD] [--carry-over-preprocessing VERSION]

Each member is a model card written by `train` and `calibrate`: its weights, temperature and
gate stay its own, fitted on its own validation split. All members must validate on the same
split (the same `NAME.split.csv`) and share input size and test-time augmentation. The command
copies each member's weights, gate and per-epoch log to `--out` as
`NAME.member<i>.keras`, `NAME.member<i>.gate.npz` and `NAME.member<i>.training-log.csv` (byte for
byte: their SHA-256 stay the members'), the split as `NAME.split.csv`, and writes `NAME.json`,
which lists the members.

The risk thresholds and the minimum confidence are fitted, as `calibrate` fits them, on DIR:
the `predictions.csv` of `dermalens.training.average` over the members' recipes' out-of-fold
pools (every HAM10000 image predicted by an ensemble that never saw its lesion), not on one
fold. With --misses-as, the monitor threshold misses no larger share of malignant lesions and
of melanomas there than the reference card does on its own split (`calibrate --misses-as`).
With --carry-over-preprocessing V, any of the members may have been trained and calibrated
under an earlier preprocessing version V, beside members of this code's version: the ensemble is
served, and validated here, under this code's version, and its card says which members were not
(`trained_with_preprocessing_version`, `carried_over_members`, numbered from 1). Use it only for
a change measured not to hurt those members (docs/model-history.md says which); without it,
members of another version are refused, as the app refuses them.
Last, the assembled card is loaded as the app loads it and run over the members' validation
split: those figures, under the fitted thresholds, are its `validation`. Everything is staged
and validated first, so a failure leaves --out as it was.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Collection
from pathlib import Path

import numpy as np

from dermalens import gate, preprocessing
from dermalens.inference import ModelLoadError, ensemble_sha256, read_model_card
from dermalens.training import data, metrics
from dermalens.training.average import read_predictions
from dermalens.training.calibrate import (THRESHOLD_RULES, choose_min_confidence, coverage_table,
                                          misses_of, risk_section)
from dermalens.training.evaluate import add_carry_over_option, evaluate, summarise

# What every member must share for one input to serve them all (the preprocessing is this code's).
SHARED_KEYS = ("input_size", "classes", "tta")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="HAM10000-style folder")
    parser.add_argument("--member", required=True, type=Path, action="append", dest="members",
                        help="a calibrated member's model card; once per member, two or more")
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--out-of-fold", required=True, type=Path, dest="out_of_fold",
                        help="a dermalens.training.average output over the members' out-of-fold pools")
    parser.add_argument("--misses-as", type=Path, metavar="REFERENCE_CARD",
                        help="fit the monitor threshold to miss no larger shares than this card")
    add_carry_over_option(parser)
    return parser.parse_args(argv)


def read_members(paths: list[Path], accepted: Collection[int] = (preprocessing.VERSION,)) -> list[dict]:
    """The members' cards, each verified as the app verifies a card (weights' SHA-256 included),
    of one of the `accepted` preprocessing versions.

    :raise ValueError: fewer than two, a member that is itself an ensemble, cannot be served, is
        not calibrated or has no training log beside it, or members that differ in what they
        share (`SHARED_KEYS`) or in their split.
    """
    if len(paths) < 2:
        raise ValueError("give two or more --member cards")
    cards = []
    for path in paths:
        try:
            card = dict(read_model_card(path, accepted)[0].card)
        except ModelLoadError as error:
            raise ValueError(str(error)) from error
        if "members" in card:
            raise ValueError(f"{path} is an ensemble itself; give its members")
        if not card.get("gate") or "calibration_command" not in card:
            raise ValueError(f"{path} is not calibrated (no gate): run dermalens.training.calibrate on it")
        if not path.with_name(f"{card['name']}.training-log.csv").is_file():
            raise ValueError(f"{path}: no {card['name']}.training-log.csv beside it")
        card["split"] = data.read_split(path.with_name(f"{card['name']}.split.csv"))
        card["path"] = path
        cards.append(card)
    first = cards[0]
    for card in cards[1:]:
        differing = [key for key in (*SHARED_KEYS, "split") if card.get(key) != first.get(key)]
        if differing:
            raise ValueError(f"{card['path']} differs from {first['path']} in {', '.join(differing)}")
    return cards


def shared_training(cards: list[dict]) -> dict:
    """The training facts every member shares (data, split, class counts, ...)."""
    first = cards[0]["training"]
    return {key: value for key, value in first.items()
            if all(card["training"].get(key) == value for card in cards[1:])}


def fit_thresholds(out_of_fold: Path, misses_as: Path | None) -> tuple[dict, dict, dict]:
    """(thresholds, their rules, how the out-of-fold lesions fall under them) fitted on an
    `average` output's predictions, as `calibrate` fits them; the monitor threshold held to the
    reference's misses when `misses_as` is given."""
    pool = read_predictions(out_of_fold)
    labels, probabilities, declined = pool["labels"], pool["probabilities"], pool["indeterminate"]
    overall = metrics.balanced_accuracy(metrics.confusion_matrix(labels, probabilities.argmax(axis=1)))
    min_confidence = choose_min_confidence(coverage_table(labels, probabilities, declined), overall)
    rules = {name: rule.replace("the validation split", "the out-of-fold predictions")
             .replace("validation", "out-of-fold") for name, rule in THRESHOLD_RULES.items()}
    max_missed = None
    if misses_as is not None:
        max_missed, rule = misses_of(misses_as)
        rules["monitor_max_malignant"] = rule.replace("malignant validation lesions",
                                                      "malignant out-of-fold lesions")
    risk = risk_section(labels, probabilities, declined, min_confidence, max_missed)
    pooled = {"predictions": str(out_of_fold), "n": int(len(labels)), "balanced_accuracy": overall,
              "risk_by_truth": risk["risk_by_truth"], "uncertain_rate": risk["uncertain_rate"]}
    return risk["thresholds"], rules, pooled


def member_entry(card: dict, out: Path, name: str, number: int) -> dict:
    """The ensemble card's entry for one member, its files copied to `out` under `name`."""
    source = card["path"]
    weights = out / f"{name}.member{number}.keras"
    gate_file = out / f"{name}.member{number}.gate.npz"
    shutil.copyfile(source.with_suffix(".keras"), weights)
    shutil.copyfile(source.parent / Path(card["gate"]["file"]).name, gate_file)
    training_log = out / f"{name}.member{number}.training-log.csv"
    shutil.copyfile(source.with_name(f"{card['name']}.training-log.csv"), training_log)
    validation = card["validation"]
    return {
        "source": {"name": card["name"], "version": card["version"]},
        "architecture": card["architecture"],
        "weights": weights.name,
        "sha256": card["sha256"],
        "temperature": card["temperature"],
        "gate": {**card["gate"], "file": gate_file.name},
        "training": card["training"],
        "training_log": training_log.name,
        "calibration_command": card["calibration_command"],
        "validation": {key: validation.get(key) for key in ("n", "balanced_accuracy", "auc_malignant", "ece")},
    }


def assemble(args) -> dict:
    """Write the ensemble's files and card to args.out; return the card."""
    cards = read_members(args.members, args.accepted_versions)
    thresholds, rules, pooled = fit_thresholds(args.out_of_fold, args.misses_as)
    rows = [row for row in data.read_ham10000(args.data) if cards[0]["split"].get(row["image_id"]) == "val"]
    if not rows:
        raise ValueError(f"{args.data}: none of the members' validation images")
    args.out.mkdir(parents=True, exist_ok=True)
    # Everything is written and validated in a staging folder first, and moved into --out only
    # when the card is complete: a failure never leaves a half-replaced model in --out.
    staging = Path(tempfile.mkdtemp(prefix=f".{args.name}-", dir=args.out))
    try:
        card = write_card(args, cards, staging, thresholds, rules, pooled)
        card["validation"], card["coverage"] = validate(staging / f"{args.name}.json", args.data / "images", rows)
        (staging / f"{args.name}.json").write_text(json.dumps(card, indent=2) + "\n")
        # The card last: until it moves, the app's card names the files it has always named.
        for path in sorted(staging.iterdir(), key=lambda path: path.suffix == ".json"):
            os.replace(path, args.out / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return card


def write_card(args, cards: list[dict], folder: Path, thresholds: dict, rules: dict, pooled: dict) -> dict:
    """The ensemble's files and card (without its validation figures) written to `folder`."""
    first = cards[0]
    members = [member_entry(card, folder, args.name, number) for number, card in enumerate(cards, start=1)]
    shutil.copyfile(first["path"].with_name(f"{first['name']}.split.csv"), folder / f"{args.name}.split.csv")
    architectures = sorted({member["architecture"] for member in members})
    carried = [number for number, card in enumerate(cards, start=1)
               if card["preprocessing_version"] != preprocessing.VERSION]
    card = {
        "name": args.name,
        "version": args.version,
        "architecture": f"ensemble of {len(members)} networks, each " + "; ".join(architectures),
        **{key: first[key] for key in SHARED_KEYS},
        "preprocessing_version": preprocessing.VERSION,
        "preprocessing": preprocessing.describe(first["input_size"]),
        **({"trained_with_preprocessing_version": args.carried_from,
            "carried_over_members": carried} if carried else {}),
        "training": shared_training(cards),
        "sha256": ensemble_sha256([member["sha256"] for member in members]),
        "members": members,
        "heatmap": {**first.get("heatmap", {}), "member": 1},
        "thresholds": thresholds,
        "threshold_rules": rules,
        "out_of_fold_risk": pooled,
        "colour_notice_threshold": gate.NOTICEABLE_COLOUR_CHANGE,
        "calibration_command": "python -m dermalens.training.ensemble " + " ".join(
            [f"--data {args.data}", *(f"--member {path}" for path in args.members), f"--name {args.name}",
             f"--version {args.version}", f"--out {args.out}", f"--out-of-fold {args.out_of_fold}",
             *([f"--misses-as {args.misses_as}"] if args.misses_as else []),
             *([f"--carry-over-preprocessing {args.carried_from}"] if args.carried_from else [])]),
    }
    (folder / f"{args.name}.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def validate(card_path: Path, images: Path, rows: list[dict]) -> tuple[dict, list[dict]]:
    """The assembled card, loaded as the app loads it, over its validation images (`rows`): the
    report `dermalens.evaluate` writes (under the card's thresholds), its answered balanced
    accuracy as `calibrate` counts it, and the coverage table."""
    from dermalens.inference import KerasClassifier

    classifier = KerasClassifier(card_path)
    results = evaluate(classifier, images, rows)
    labels, probabilities, declined = results["labels"], results["probabilities"], results["indeterminate"]
    report = summarise(results)
    report["gate_flagged_rate"] = report["indeterminate_rate"]
    # As `calibrate` reports it: the answers neither declined nor flagged uncertain.
    answered = ~declined & ~results["uncertain"]
    report["balanced_accuracy_answered"] = (metrics.balanced_accuracy(metrics.confusion_matrix(
        labels[answered], probabilities[answered].argmax(axis=1))) if answered.any() else None)
    return report, coverage_table(labels, probabilities, declined)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        card = assemble(args)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    validation = card["validation"]
    print(f"{card['name']} {card['version']}: {len(card['members'])} members, validation balanced accuracy "
          f"{validation['balanced_accuracy']:.3f}, AUC malignant {validation['auc_malignant']:.3f}, "
          f"ECE {validation['ece']:.3f}, declined {validation['indeterminate_rate']:.1%}")
    print(f"thresholds (fitted on {card['out_of_fold_risk']['n']} out-of-fold predictions): {card['thresholds']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
