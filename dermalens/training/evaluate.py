"""Evaluate the shipped model on a labelled folder of images, through the app's inference path.

    python -m dermalens.evaluate --images DIR --labels CSV --out DIR
    python -m dermalens.evaluate --out-of-scope DIR --out DIR

DIR holds `<image_id>.jpg` or `.png` of any size; CSV has `image_id,dx` and optionally
`age,sex,localization` (HAM10000 vocabulary; empty or "unknown" = unknown). Writes
`metrics.json`, `predictions.csv`, `confusion_matrix.png` and `roc.png` to --out.

With --carry-over-preprocessing V, a card of the earlier preprocessing version V is evaluated under
this code's preprocessing, as `training.ensemble --carry-over-preprocessing` would serve it.

With --out-of-scope, every image in DIR is taken as NOT a dermoscopic lesion image; the command
prints and writes (`out_of_scope.json`) the fraction the app declines to assess, by file-name
prefix (see `python -m tools.out_of_scope`).
"""

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from dermalens import gate, preprocessing
from dermalens.assessment import assess_image, decode_for_analysis
from dermalens.config import DEFAULT_MODEL_CARD
from dermalens.lesions import CLASSES
from dermalens.training import metrics
from dermalens.training.data import IMAGE_SUFFIXES, read_labelled_image, read_labels


class _CarryOver(argparse.Action):
    """Stores the earlier version as `carried_from` and both versions as `accepted_versions`."""

    def __call__(self, parser, namespace, value, option_string=None):
        if not 0 < value < preprocessing.VERSION:
            parser.error(f"{option_string} must be an earlier version than {preprocessing.VERSION}")
        namespace.carried_from, namespace.accepted_versions = value, {preprocessing.VERSION, value}


def add_carry_over_option(parser: argparse.ArgumentParser) -> None:
    """`--carry-over-preprocessing VERSION`: also accept cards of that earlier preprocessing
    version, served under this code's. The parsed arguments get `carried_from` (the version, or
    None) and `accepted_versions` (the set a card may have; this code's alone by default)."""
    parser.add_argument("--carry-over-preprocessing", type=int, metavar="VERSION", dest="carried_from",
                        action=_CarryOver,
                        help="also accept cards of this earlier preprocessing version, served under this code's")
    parser.set_defaults(accepted_versions={preprocessing.VERSION})


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=Path)
    parser.add_argument("--labels", type=Path)
    parser.add_argument("--out-of-scope", type=Path, help="folder of out-of-scope images")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--model-card", default=str(DEFAULT_MODEL_CARD))
    add_carry_over_option(parser)
    args = parser.parse_args(argv)
    if not args.out_of_scope and not (args.images and args.labels):
        parser.error("give --images and --labels, or --out-of-scope")
    return args


def evaluate(classifier, images: Path, rows: list[dict], progress=None) -> dict:
    """Run every labelled image through `assessment.assess_image`, as the app would.

    :return: {"labels", "probabilities", "indeterminate" (declined by the image gate),
        "uncertain" (answered, with low confidence), "noticed" (a notice, e.g. colours adjusted,
        was shown), "risk" (category codes), "declined_by" (each image's `gate.REASONS` keys),
        "skipped": [(image_id, reason)], "ids"}
    """
    labels, probabilities, indeterminate, uncertain, noticed, risk, declined_by, skipped, ids = (
        [] for _ in range(9))
    for row in (progress(rows) if progress else rows):
        rgb, why_not = read_labelled_image(images, row["image_id"])
        if rgb is None:
            skipped.append((row["image_id"], why_not))
            continue
        assessment = assess_image(classifier, rgb, row["age"], row["sex"], row["site"], explain=False)
        labels.append(CLASSES.index(row["dx"]))
        probabilities.append([assessment.prediction.probabilities[name] for name in CLASSES])
        indeterminate.append(assessment.declined)
        uncertain.append(assessment.uncertain)
        risk.append(assessment.risk_category)
        noticed.append(bool(assessment.notices))
        declined_by.append([reason_key(reason) for reason in assessment.gate_reasons])
        ids.append(row["image_id"])
    return {"labels": np.array(labels, int), "probabilities": np.array(probabilities, float).reshape(-1, 7),
            "indeterminate": np.array(indeterminate, bool), "uncertain": np.array(uncertain, bool),
            "noticed": np.array(noticed, bool), "risk": risk, "declined_by": declined_by,
            "skipped": skipped, "ids": ids}


def reason_key(text: str) -> str:
    """The `gate.REASONS` key of a reason as the gate words it."""
    for key, template in gate.REASONS.items():
        if text.startswith(template.split("{")[0]):
            return key
    raise ValueError(f"not a gate reason: {text!r}")


def declined_by_reason(declined_by: list[list[str]]) -> dict[str, float]:
    """Share of the images declined for each gate reason (an image may have several)."""
    count = max(len(declined_by), 1)
    keys = sorted({key for reasons in declined_by for key in reasons})
    return {key: sum(key in reasons for reasons in declined_by) / count for key in keys}


def measure_out_of_scope(classifier, folder: Path) -> dict:
    """Share of the images in `folder` the app declines (gate reasons, or any indeterminate)."""
    by_kind: dict[str, list[tuple[bool, bool]]] = {}
    for path in sorted(p for p in folder.iterdir() if p.suffix in IMAGE_SUFFIXES):
        try:
            rgb = decode_for_analysis(path.read_bytes())
        except preprocessing.InvalidImage:
            declined = (True, True)  # refused at upload, never analysed
        else:
            assessment = assess_image(classifier, rgb, explain=False)
            declined = (bool(assessment.gate_reasons), assessment.declined)
        by_kind.setdefault(path.stem.split("-")[0], []).append(declined)

    def fractions(pairs):
        return {"n": len(pairs), "gate_flagged": float(np.mean([p[0] for p in pairs])),
                "indeterminate": float(np.mean([p[1] for p in pairs]))}

    everything = [pair for pairs in by_kind.values() for pair in pairs]
    return {**fractions(everything), "by_kind": {k: fractions(v) for k, v in sorted(by_kind.items())}}


def summarise(results: dict) -> dict:
    """metrics.json content: overall figures plus the answered (non-indeterminate) part."""
    labels, probabilities = results["labels"], results["probabilities"]
    report = metrics.classification_report(labels, probabilities)
    report["confidence_intervals"] = metrics.bootstrap_intervals(labels, probabilities) if len(labels) else None
    answered = ~results["indeterminate"]
    report["indeterminate_rate"] = float(results["indeterminate"].mean()) if len(labels) else 0.0
    uncertain = results.get("uncertain", np.zeros(len(labels), bool))
    report["uncertain_rate"] = float(uncertain.mean()) if len(labels) else 0.0
    report["risk_by_truth"] = risk_by_truth(labels, results.get("risk", []))
    report["declined_by_reason"] = declined_by_reason(results.get("declined_by", []))
    if answered.any():
        answered_matrix = metrics.confusion_matrix(labels[answered], probabilities[answered].argmax(1))
        report["balanced_accuracy_answered"] = metrics.balanced_accuracy(answered_matrix)
    else:
        report["balanced_accuracy_answered"] = None
    # How often the clinician is told colours were adjusted, and whether those answers are worse
    # (plain accuracy: a class-balanced figure is too noisy on a small subset).
    noticed = results["noticed"]
    report["notice_rate"] = float(noticed.mean()) if len(labels) else 0.0
    correct = probabilities.argmax(1) == labels
    report["accuracy_with_notice"] = float(correct[noticed].mean()) if noticed.any() else None
    report["accuracy_without_notice"] = float(correct[~noticed].mean()) if (~noticed).any() else None
    report["skipped"] = [{"image_id": image_id, "reason": reason} for image_id, reason in results["skipped"]]
    report["classes"] = list(CLASSES)
    return report


def risk_by_truth(labels: np.ndarray, categories: list[str]) -> dict:
    """How the lesions, malignant, benign and melanomas, fall into the risk categories."""
    counts = {"malignant": {}, "benign": {}, "melanoma": {}}
    for label, category in zip(labels, categories):
        groups = ["malignant" if label in metrics.MALIGNANT_INDICES else "benign"]
        groups += ["melanoma"] if label == metrics.MELANOMA_INDEX else []
        for group in groups:
            counts[group][category] = counts[group].get(category, 0) + 1
    return counts


def plot_confusion_matrix(matrix, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    figure, axis = plt.subplots(figsize=(6.5, 5.5))
    normalised = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    image = axis.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    for (row, column), count in np.ndenumerate(matrix):
        axis.text(column, row, str(count), ha="center", va="center",
                  color="white" if normalised[row, column] > 0.5 else "black", fontsize=8)
    axis.set_xticks(range(len(CLASSES)), CLASSES)
    axis.set_yticks(range(len(CLASSES)), CLASSES)
    axis.set_xlabel("predicted")
    axis.set_ylabel("truth (row-normalised colour, counts printed)")
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_roc(labels, probabilities, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 5))
    names = {"malignant": "malignant (mel+bcc+akiec)", "melanoma": "melanoma"}
    for target, (truth, scores) in metrics.binary_questions(labels, probabilities).items():
        auc = metrics.roc_auc(truth, scores)
        if not np.isnan(auc):
            fpr, tpr = metrics.roc_curve(truth, scores)
            axis.plot(fpr, tpr, label=f"{names[target]}: AUC {auc:.3f}")
    axis.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    axis.set_xlabel("1 - specificity")
    axis.set_ylabel("sensitivity")
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def print_summary(report: dict) -> None:
    def fmt(value):
        return "n/a" if value is None else f"{value:.3f}"

    def interval(name):
        return metrics.interval_text(report.get("confidence_intervals"), name)

    print(f"images evaluated: {report['n']}  (skipped {len(report['skipped'])})")
    print(f"balanced accuracy {fmt(report['balanced_accuracy'])}{interval('balanced_accuracy')}   "
          f"accuracy {fmt(report['accuracy'])}")
    print(f"melanoma recall {fmt(report['recall']['mel'])}{interval('melanoma_recall')}")
    print(f"AUC malignant {fmt(report['auc_malignant'])}{interval('auc_malignant')}   "
          f"AUC melanoma {fmt(report['auc_melanoma'])}{interval('auc_melanoma')}   ECE {fmt(report['ece'])}")
    for target, at_levels in report["sensitivity_at_specificity"].items():
        print(f"{target} sensitivity at specificity "
              + ", ".join(f"{float(level):.0%}: {fmt(value)}" for level, value in at_levels.items()))
    print(f"uncertain rate {fmt(report['uncertain_rate'])}   risk by truth {report['risk_by_truth']}")
    print(f"declined (indeterminate) rate {fmt(report['indeterminate_rate'])}   balanced accuracy answered "
          f"{fmt(report['balanced_accuracy_answered'])}")
    if report["declined_by_reason"]:
        print("declined for: " + ", ".join(f"{key} {share:.1%}"
                                           for key, share in report["declined_by_reason"].items()))
    print(f"colour notice rate {fmt(report['notice_rate'])}   accuracy with / without a notice "
          f"{fmt(report['accuracy_with_notice'])} / {fmt(report['accuracy_without_notice'])}")
    print("class   recall  precision")
    for name in CLASSES:
        print(f"{name:6s}  {fmt(report['recall'][name]):>6s}  {fmt(report['precision'][name]):>9s}")


def main(argv=None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    from dermalens.inference import KerasClassifier, ModelLoadError

    try:
        rows = read_labels(args.labels) if args.labels else []
        classifier = KerasClassifier(args.model_card, args.accepted_versions)
    except (OSError, ValueError, ModelLoadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if args.out_of_scope:
        result = measure_out_of_scope(classifier, args.out_of_scope)
        (args.out / "out_of_scope.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"out-of-scope images: {result['n']}; flagged by the gate {result['gate_flagged']:.1%}; "
              f"indeterminate overall {result['indeterminate']:.1%}")
        for kind, figures in result["by_kind"].items():
            print(f"  {kind:12s} n={figures['n']:3d}  gate {figures['gate_flagged']:.1%}  "
                  f"indeterminate {figures['indeterminate']:.1%}")
        if not rows:
            return 0
    results = evaluate(classifier, args.images, rows,
                       progress=lambda items: tqdm(items, desc="evaluating", unit="img"))
    if not len(results["labels"]):
        print("error: no image could be evaluated", file=sys.stderr)
        return 2
    report = summarise(results)
    report["model"] = {"name": classifier.info.name, "version": classifier.info.version,
                       "sha256": classifier.info.sha256}
    write_outputs(args.out, report, results)
    print_summary(report)
    print(f"written to {args.out}/")
    return 0


def write_outputs(out: Path, report: dict, results: dict) -> None:
    """Write `metrics.json` (`report`), `predictions.csv` (one row per image of `results`, with
    its fold when `results` has "folds"), `confusion_matrix.png` and `roc.png` into `out`."""
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    folds = results.get("folds")
    with open(out / "predictions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "dx", "predicted", "indeterminate", "notice",
                         *(["fold"] if folds is not None else []), *CLASSES])
        for index, (image_id, label, probs) in enumerate(zip(results["ids"], results["labels"],
                                                             results["probabilities"])):
            writer.writerow([image_id, CLASSES[label], CLASSES[int(np.argmax(probs))],
                             int(results["indeterminate"][index]), int(results["noticed"][index]),
                             *([int(folds[index])] if folds is not None else []),
                             *(f"{p:.6f}" for p in probs)])
    plot_confusion_matrix(report["confusion_matrix"], out / "confusion_matrix.png")
    plot_roc(results["labels"], results["probabilities"], out / "roc.png")


if __name__ == "__main__":
    sys.exit(main())
