"""How many benign lesions a model sends to monitoring when it misses no more than a reference.

    python -m dermalens.training.matched_monitor --predictions DIR --reference FILE

DIR is what `dermalens.training.out_of_fold`, `dermalens.training.average --fit-risk` (or
`dermalens.evaluate`) wrote: its `predictions.csv` gives each image's calibrated probabilities
and whether the gate declined it, and its `metrics.json` the thresholds to hold fixed, the
fitted ones (`out_of_fold.fitted_risk` or `fitted_risk`) where present, else the card's. FILE is
a model card (its `validation.risk_by_truth`) or another such `metrics.json` (its fitted
`risk_by_truth`): the shares of melanomas and of malignant lesions it sends to monitoring are
the misses allowed.

Only `monitor_max_malignant` moves: the command finds the highest monitor threshold at which
this model monitors no larger share of melanomas and no larger share of malignant lesions than
the reference, and prints, as JSON, that threshold and the shares of melanomas, malignant and
benign lesions monitored under it, beside the reference's. Two models that miss as much can
then be compared by how many benign lesions each spares a referral. It changes no model card.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from dermalens.lesions import CLASSES, MALIGNANT_CLASSES
from dermalens.risk import MONITOR_CEILING, assess_risk
from dermalens.training.average import read_predictions


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--predictions", required=True, type=Path,
                        help="an out_of_fold or evaluate output folder")
    parser.add_argument("--reference", required=True, type=Path,
                        help="a model card, or an out_of_fold metrics.json, whose misses are allowed")
    return parser.parse_args(argv)


def monitored_shares(risk_by_truth: dict) -> dict:
    """Share of each group (melanoma, malignant, benign) that a `risk_by_truth` table monitors."""
    shares = {}
    for group in ("melanoma", "malignant", "benign"):
        counts = risk_by_truth.get(group, {})
        total = sum(counts.values())
        if not total:
            raise ValueError(f"no {group} lesions in the reference's risk table")
        shares[group] = {"monitored": counts.get("monitor", 0), "of": total,
                         "share": counts.get("monitor", 0) / total}
    return shares


def read_reference(path: Path) -> dict:
    """The risk table of a model card or of a fitted `metrics.json` (out_of_fold, average --fit-risk)."""
    return risk_table(read_document(path), path)


def read_document(path: Path) -> dict:
    """A JSON file's content, which must be an object; ValueError, naming the file, when it
    cannot be read or is not an object."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not readable JSON ({error})") from error
    if not isinstance(document, dict):
        raise ValueError(f"{path}: not a JSON object")
    return document


def fitted_risk(report: dict) -> dict | None:
    """The risk section fitted by out_of_fold (`out_of_fold.fitted_risk`) or by average
    --fit-risk (`fitted_risk`) in a `metrics.json`'s content; None when neither fitted one."""
    section = report.get("out_of_fold", report)
    fitted = section.get("fitted_risk") if isinstance(section, dict) else None
    return fitted if isinstance(fitted, dict) else None


def risk_table(document: dict, path: Path) -> dict:
    """The `risk_by_truth` table of a model card's or a fitted `metrics.json`'s content (as
    `read_document` gives it)."""
    fitted = fitted_risk(document)
    if fitted and isinstance(fitted.get("risk_by_truth"), dict):
        return fitted["risk_by_truth"]
    validation = document.get("validation")
    if isinstance(validation, dict) and isinstance(validation.get("risk_by_truth"), dict):
        return validation["risk_by_truth"]
    raise ValueError(f"{path}: neither a model card with validation.risk_by_truth "
                     "nor a metrics.json with fitted risk thresholds")


def read_thresholds(folder: Path) -> dict:
    """The thresholds an evaluate, out_of_fold or average --fit-risk output holds (fitted ones first)."""
    report = read_document(folder / "metrics.json")
    thresholds = (fitted_risk(report) or {}).get("thresholds") or report.get("thresholds")
    if not thresholds:
        raise ValueError(f"{folder}/metrics.json: no risk thresholds (fitted_risk or thresholds)")
    return thresholds


def matched_threshold(predictions: dict, thresholds: dict, allowed: dict) -> dict:
    """The highest monitor threshold whose monitored shares of melanomas and of malignant
    lesions stay within `allowed` (shares), and the shares of each group monitored under it."""
    labels = predictions["labels"]
    melanoma = labels == CLASSES.index("mel")
    malignant = np.isin(labels, [CLASSES.index(name) for name in MALIGNANT_CLASSES])
    scores = predictions["probabilities"][:, [CLASSES.index(name) for name in MALIGNANT_CLASSES]].sum(axis=1)
    # With the threshold at its ceiling every lesion the pathways leave to the threshold is
    # "monitor" or "review"; which of them a lower threshold monitors depends on its score alone.
    open_thresholds = {**thresholds, "monitor_max_malignant": MONITOR_CEILING}
    left_to_threshold = np.array([
        assess_risk(dict(zip(CLASSES, row)), open_thresholds, declined=bool(declined)) in ("monitor", "review")
        for row, declined in zip(predictions["probabilities"], predictions["indeterminate"])])

    def shares(threshold):
        monitored = left_to_threshold & (scores < threshold)
        return {name: {"monitored": int((monitored & group).sum()), "of": int(group.sum()),
                       "share": float((monitored & group).sum() / max(group.sum(), 1))}
                for name, group in (("melanoma", melanoma), ("malignant", malignant), ("benign", ~malignant))}

    def within(result):
        return all(result[name]["share"] <= allowed[name] for name in ("melanoma", "malignant"))

    # Candidates from the highest down: the ceiling, then each score a lesion could sit on.
    candidates = [MONITOR_CEILING, *sorted(set(scores[left_to_threshold & (scores < MONITOR_CEILING)]),
                                           reverse=True)]
    for threshold in candidates:
        result = shares(threshold)
        if within(result):
            return {"monitor_max_malignant": float(threshold), **result}
    return {"monitor_max_malignant": 0.0, **shares(0.0)}


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        reference = monitored_shares(read_reference(args.reference))
        thresholds = read_thresholds(args.predictions)
        predictions = read_predictions(args.predictions)
    except (ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    allowed = {name: reference[name]["share"] for name in ("melanoma", "malignant")}
    report = {"predictions": str(args.predictions), "reference": str(args.reference),
              "reference_monitored": reference,
              "matched": matched_threshold(predictions, thresholds, allowed),
              "thresholds_held": {name: value for name, value in thresholds.items()
                                  if name != "monitor_max_malignant"}}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
