"""What several models would score as one: their evaluated probabilities averaged, image by image.

    python -m dermalens.training.average --predictions DIR1 --predictions DIR2 [...] --out DIR

Each DIR is what `dermalens.evaluate` wrote for one model on the same image set; its
`predictions.csv` holds each image's calibrated class probabilities (the card's temperature and
test-time augmentation applied). The command checks that every DIR covers the same images with
the same labels, averages the probabilities, and writes `metrics.json`, `predictions.csv` and
the plots to --out, as `dermalens.evaluate` does.

An image counts as declined when any member's gate declined it: no ensemble gate exists, and a
served average would run every member's checks. No risk thresholds are fitted for the average,
so `risk_by_truth` is empty, unless --fit-risk: then the risk thresholds and minimum confidence
are fitted on the average as `out_of_fold` fits them, and written as `fitted_risk`, which
`matched_monitor` reads. Give --fit-risk only when every member is out of fold for every image
(for instance `out_of_fold` pools of the same folds), or the thresholds are fitted on images the
members learnt. This measures whether averaging would pay; it does not serve one.
"""

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from dermalens.lesions import CLASSES
from dermalens.training.evaluate import print_summary, summarise, write_outputs


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--predictions", required=True, type=Path, action="append", dest="folders",
                        help="a dermalens.evaluate output folder; once per member, two or more")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--fit-risk", action="store_true",
                        help="fit risk thresholds on the average (members out of fold only)")
    return parser.parse_args(argv)


def read_predictions(folder: Path) -> dict:
    """One evaluate output's `predictions.csv` as ids, label indices, probabilities and flags."""
    path = folder / "predictions.csv"
    if not path.is_file():
        raise ValueError(f"{folder}: no predictions.csv (is it a dermalens.evaluate output?)")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{path}: no images")
    missing = [name for name in ("image_id", "dx", "indeterminate", "notice", *CLASSES) if name not in rows[0]]
    if missing:
        raise ValueError(f"{path}: missing columns {', '.join(missing)}")
    ids = [row["image_id"] for row in rows]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: some images appear more than once")
    unknown = sorted({row["dx"] for row in rows} - set(CLASSES))
    if unknown:
        raise ValueError(f"{path}: unknown classes {', '.join(unknown)}")
    return {
        "ids": ids,
        "labels": np.array([CLASSES.index(row["dx"]) for row in rows]),
        "probabilities": np.array([[float(row[name]) for name in CLASSES] for row in rows]),
        "indeterminate": np.array([row["indeterminate"] == "1" for row in rows]),
        "noticed": np.array([row["notice"] == "1" for row in rows]),
    }


def average(members: list[dict]) -> dict:
    """The members' probabilities averaged per image, in the first member's image order.

    Raises ValueError unless every member covers the same images with the same labels."""
    first = members[0]
    order = {image_id: index for index, image_id in enumerate(first["ids"])}
    aligned = []
    for number, member in enumerate(members, start=1):
        if sorted(member["ids"]) != sorted(first["ids"]):
            raise ValueError(f"member {number} does not cover the same images as member 1")
        position = np.empty(len(order), int)
        for index, image_id in enumerate(member["ids"]):
            position[order[image_id]] = index
        if not np.array_equal(member["labels"][position], first["labels"]):
            raise ValueError(f"member {number} labels some images differently from member 1")
        aligned.append({key: member[key][position] for key in ("probabilities", "indeterminate", "noticed")})
    return {
        "ids": first["ids"],
        "labels": first["labels"],
        "probabilities": np.mean([member["probabilities"] for member in aligned], axis=0),
        "indeterminate": np.any([member["indeterminate"] for member in aligned], axis=0),
        "noticed": np.any([member["noticed"] for member in aligned], axis=0),
        "skipped": [],
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if len(args.folders) < 2:
        print("error: give two or more --predictions folders", file=sys.stderr)
        return 2
    try:
        results = average([read_predictions(folder) for folder in args.folders])
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = summarise(results)
    report["members"] = [str(folder) for folder in args.folders]
    if args.fit_risk:
        # Imported here: calibrate imports matched_monitor, which imports this module.
        from dermalens.training import calibrate
        # The gate's declines count as flagged, as in calibrate and out_of_fold.
        _, report["fitted_risk"] = calibrate.fit_risk(results["labels"], results["probabilities"],
                                                      results["indeterminate"], report["balanced_accuracy"])
    args.out.mkdir(parents=True, exist_ok=True)
    write_outputs(args.out, report, results)
    print_summary(report)
    if args.fit_risk:
        print(f"risk thresholds fitted on the average: {report['fitted_risk']['thresholds']}")
    print(f"written to {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
