"""Fit everything that turns trained weights into a servable model card, on the validation split.

    python -m dermalens.training.calibrate --data ../shared/data/ham10000 \
        --model-card models/NAME.json [--no-tta] [--risk-only [--misses-as REFERENCE_CARD]]

Reads the weights (`NAME.keras`) and the lesion-grouped split (`NAME.split.csv`) beside the card,
runs every image through the serving path (decode, prepare, network with test-time augmentation),
then writes into the card: the temperature (NLL on validation), validation metrics, risk
thresholds, the minimum confidence, and the image gate (parameters fitted on the training split,
thresholds at percentiles of the validation split), plus the coverage/accuracy trade-off.
With --prior-correction it first fits per-class logit offsets on the validation split
(`metrics.fit_prior_correction`: the network's class prior corrected), adds them to the bias of
the network's logits layer (the weights file is rewritten and its SHA-256 updated in the card)
and fits everything else on the corrected logits; the card records them under
`training.prior_correction`, and a corrected network is never corrected twice.

The gate's image-statistics check and quality limits are fitted on each image and one
device-style view of it (`device_views.render_view`: another white balance, exposure,
magnification, blur, compression), so that they judge whether an image is an assessable
dermoscopic lesion photo at all, not whether it was taken with one of HAM10000's cameras.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from dermalens import config, gate, preprocessing
from dermalens.assessment import decode_for_analysis
from dermalens.inference import softmax
from dermalens.lesions import CLASSES
from dermalens.risk import assess_risk
from dermalens.risk import KERATINOCYTE_CLASSES
from dermalens.training import data, device_views, metrics
from dermalens.training.evaluate import risk_by_truth
from dermalens.training.matched_monitor import monitored_shares, read_document, risk_table

# Share of real dermoscopic validation images each check may flag (its false-alarm budget).
QUALITY_PERCENTILE = 0.5      # too dark / overexposed / blurred: 0.5% each, at the extremes
SCOPE_PERCENTILE = 99.0       # statistics and embedding distance: 1% each
# The training copies are downscaled and almost never show glare; real uploads from contact
# dermoscopy can. Never call an image overexposed for fewer blown-out pixels than this.
MIN_BLOWN_OUT_LIMIT = 0.10
GATE_METHOD = ("quality percentiles + Mahalanobis distance of image statistics (both fitted on the "
               "images and a device-style view of each) + monochrome images out of scope + "
               "class-conditional Mahalanobis distance of pooled embeddings")
CONFIDENCE_GRID = np.round(np.arange(0.30, 0.91, 0.02), 2)
MAX_MISSED_SHARE = 0.05       # of malignant lesions, and of melanomas, sent to monitoring
REQUIRED_GAIN = 0.05          # answered-part balanced accuracy must beat overall by 5 points
BATCH = 64


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--model-card", required=True, type=Path)
    parser.add_argument("--no-tta", action="store_true", help="disable test-time augmentation")
    parser.add_argument("--risk-only", action="store_true",
                        help="keep the temperature, gate and minimum confidence; refit only the risk "
                             "thresholds and the risk figures (after a change of the risk rules)")
    parser.add_argument("--prior-correction", action="store_true",
                        help="correct the network's class prior first (metrics.fit_prior_correction), "
                             "for a network taught at HAM10000's class frequencies")
    parser.add_argument("--misses-as", type=Path, metavar="REFERENCE_CARD",
                        help="with --risk-only: fit the monitor threshold to miss no larger share of "
                             "malignant lesions and of melanomas than this model card does on its split")
    args = parser.parse_args(argv)
    if args.misses_as and not args.risk_only:
        parser.error("--misses-as refits the risk thresholds only: give it with --risk-only")
    return args


def served_features(runner, images: list[preprocessing.PreparedImage], metadata: np.ndarray,
                    input_size: int):
    """(logits, embeddings, gate statistics) for prepared images, as the app computes them."""
    logits, embeddings = [], []
    for start in range(0, len(images), BATCH):
        batch = np.stack([preprocessing.network_input(prepared, input_size).tensor
                          for prepared in images[start:start + BATCH]])
        batch_logits, batch_embeddings = runner(batch, metadata[start:start + BATCH])
        logits.append(batch_logits)
        embeddings.append(batch_embeddings)
    statistics = np.stack([gate.image_statistics(prepared) for prepared in images])
    return np.concatenate(logits), np.concatenate(embeddings), statistics


def choose_risk_thresholds(labels: np.ndarray, probabilities: np.ndarray, max_missed: dict | None = None) -> dict:
    """Risk thresholds from the validation split.

    - `monitor_max_malignant`: a benign-looking lesion is "monitor" only below this malignant
      probability, set so that at least 95% of malignant validation lesions are referred, and
      at least 95% of the melanomas among them; `max_missed` ({"malignant": share, "melanoma":
      share}) replaces the two 5% bounds.
    - `urgent_malignant`: the lowest malignant probability at which at least half of those
      flagged are malignant (the fallback of the two below for cards that lack them).
    - `urgent_melanoma`: melanoma probability from which the melanoma pathway is named whatever
      the top class: the lowest at which at least half of those flagged are melanomas.
    - `referral_keratinocyte`: BCC + AKIEC probability from which a keratinocyte-cancer referral
      is made whatever the top class: the lowest at which at least half flagged are BCC or AKIEC.
    """
    malignant, scores = metrics.binary_questions(labels, probabilities)["malignant"]
    melanoma = labels == metrics.MELANOMA_INDEX
    benign_top = ~np.isin(probabilities.argmax(axis=1), metrics.MALIGNANT_INDICES)
    # Malignant lesions whose top class is benign are referred only by the threshold; those
    # strictly below it are missed. Melanomas are held to the bound on their own: as a minority
    # of the malignant lesions, more of them could be missed within the bound for all.
    max_missed = max_missed or {"malignant": MAX_MISSED_SHARE, "melanoma": MAX_MISSED_SHARE}
    monitor_max = min(_referring_all_but(max_missed["malignant"], scores[malignant & benign_top], malignant.sum()),
                      _referring_all_but(max_missed["melanoma"], scores[melanoma & benign_top], melanoma.sum()))
    urgent = _half_flagged_threshold(malignant, scores)
    keratinocyte = [CLASSES.index(name) for name in KERATINOCYTE_CLASSES]
    return {"monitor_max_malignant": float(np.floor(min(monitor_max, urgent) * 1e4) / 1e4),
            "urgent_malignant": urgent,
            "urgent_melanoma": _half_flagged_threshold(labels == metrics.MELANOMA_INDEX,
                                                       probabilities[:, metrics.MELANOMA_INDEX]),
            "referral_keratinocyte": _half_flagged_threshold(np.isin(labels, keratinocyte),
                                                             probabilities[:, keratinocyte].sum(axis=1))}


def _referring_all_but(share: float, missable_scores: np.ndarray, total: int) -> float:
    """The highest threshold that leaves at most `share` of `total` lesions below it, given the
    scores of those the threshold alone refers; 0.5 when too few of them to matter."""
    missed = np.sort(missable_scores)
    allowed = int(np.floor(share * total))
    return 0.5 if len(missed) <= allowed else float(missed[allowed])


def _half_flagged_threshold(truth: np.ndarray, scores: np.ndarray) -> float:
    """The lowest threshold on the grid 0.30..0.94 at which at least half of the lesions scoring
    at or above it are `truth`; 0.8 when none is."""
    for threshold in np.arange(0.30, 0.95, 0.01):
        flagged = scores >= threshold
        if flagged.sum() and truth[flagged].mean() >= 0.5:
            return float(round(threshold, 2))
    return 0.8


# How each threshold is chosen, printed in the model card and by /api/info.
THRESHOLD_RULES = {
    "urgent_melanoma": "melanoma probability from which the suspected-melanoma pathway is named even "
                       "when another class is most likely: the lowest value at which at least half of "
                       "the validation lesions flagged were melanomas",
    "referral_keratinocyte": "BCC + AKIEC probability from which a keratinocyte-cancer referral is made "
                             "even when a benign class is most likely: the lowest value at which at "
                             "least half of the validation lesions flagged were BCC or AKIEC",
    "monitor_max_malignant": "a benign-looking lesion is sent to monitoring only below this malignant "
                             "probability (and never at 0.5 or more): set so that at least 95% of "
                             "malignant validation lesions are referred, and at least 95% of the "
                             "melanomas among them",
    "urgent_malignant": "the lowest malignant probability at which at least half of the validation "
                        "lesions flagged were malignant (used only by cards without the two above)",
    "min_confidence": "below this top-class probability an answer is flagged uncertain (it is still "
                      "given, and its referral stands): the lowest value whose confident part gains 5 "
                      "points of balanced accuracy on the validation split",
}


def risk_section(labels, probabilities, gate_flags, min_confidence: float, max_missed: dict | None = None) -> dict:
    """Thresholds (`choose_risk_thresholds` plus `min_confidence`) and how the validation lesions,
    malignant, benign and melanomas, fall into the risk categories under them."""
    thresholds = {**choose_risk_thresholds(labels, probabilities, max_missed), "min_confidence": min_confidence}
    categories = [assess_risk(dict(zip(CLASSES, row)), thresholds, declined=bool(flagged))
                  for row, flagged in zip(probabilities, gate_flags)]
    uncertain = (~np.asarray(gate_flags, bool)) & (probabilities.max(axis=1) < min_confidence)
    return {"thresholds": thresholds, "risk_by_truth": risk_by_truth(labels, categories),
            "uncertain_rate": float(uncertain.mean())}


def fit_risk(labels, probabilities, gate_flags, overall_balanced_accuracy: float) -> tuple[list[dict], dict]:
    """(`coverage_table`, `risk_section`) for these predictions, the minimum confidence chosen
    from the table by `choose_min_confidence` against their overall balanced accuracy."""
    table = coverage_table(labels, probabilities, gate_flags)
    min_confidence = choose_min_confidence(table, overall_balanced_accuracy)
    return table, risk_section(labels, probabilities, gate_flags, min_confidence)


def coverage_table(labels, probabilities, gate_flags) -> list[dict]:
    """Answered fraction and answered-part balanced accuracy for each confidence threshold."""
    rows = []
    confidence = probabilities.max(axis=1)
    for threshold in CONFIDENCE_GRID:
        answered = (~gate_flags) & (confidence >= threshold)
        if answered.sum() == 0:
            continue
        matrix = metrics.confusion_matrix(labels[answered], probabilities[answered].argmax(1))
        rows.append({"min_confidence": float(threshold), "coverage": float(answered.mean()),
                     "balanced_accuracy_answered": metrics.balanced_accuracy(matrix),
                     "accuracy_answered": float(np.trace(matrix) / matrix.sum())})
    return rows


def choose_min_confidence(table: list[dict], overall: float) -> float:
    """The lowest threshold (most answers) whose answered part gains REQUIRED_GAIN over overall;
    the strictest threshold if none does, the loosest if nothing is answered at any."""
    if not table:
        return float(CONFIDENCE_GRID[0])
    for row in table:
        if row["balanced_accuracy_answered"] >= overall + REQUIRED_GAIN:
            return row["min_confidence"]
    return table[-1]["min_confidence"]


def device_view_statistics(rows: list[dict], decoded: list[np.ndarray]) -> np.ndarray:
    """Gate statistics of one device-style view of each decoded training image (views 1, 2, 3
    in turn), each seen through `preprocessing.prepare` as an upload of it would be."""
    return np.stack([gate.image_statistics(preprocessing.prepare(
                         device_views.render_view(rgb, row["image_id"], 1 + position % 3)))
                     for position, (row, rgb) in enumerate(zip(rows, decoded))])


def fit_gate(train_stats, train_embeddings, train_labels, val_stats, val_embeddings,
             train_view_stats, val_view_stats) -> gate.Gate:
    """The gate: quality limits at percentiles of the validation images and their device-style
    views; the statistics distance fitted on the training images and their views, its limit at a
    percentile of the validation images and theirs; the embedding distance fitted on the
    training images' embeddings, its limit at a percentile of the validation images'."""
    statistics_mean, statistics_precision = gate.fit_gaussian(np.concatenate([train_stats, train_view_stats]))
    embedding_means, embedding_precision = gate.fit_class_conditional(
        train_embeddings, train_labels, len(CLASSES))
    val_and_views = np.concatenate([val_stats, val_view_stats])
    column = {name: val_and_views[:, index] for index, name in enumerate(gate.STATISTIC_NAMES)}
    fitted = gate.Gate(statistics_mean, statistics_precision, embedding_means, embedding_precision, {})
    fitted.thresholds = {
        "min_luminance": float(np.percentile(column["luminance_mean"], QUALITY_PERCENTILE)),
        "max_luminance": float(np.percentile(column["luminance_mean"], 100 - QUALITY_PERCENTILE)),
        "max_blown_out_fraction": float(max(np.percentile(column["blown_out_fraction"], 100 - QUALITY_PERCENTILE),
                                            MIN_BLOWN_OUT_LIMIT)),
        "min_sharpness": float(np.percentile(column["sharpness"], QUALITY_PERCENTILE)),
        "max_statistics_distance": float(np.percentile(
            fitted.statistics_distance(val_and_views), SCOPE_PERCENTILE)),
        "max_embedding_distance": float(np.percentile(
            fitted.embedding_distance(val_embeddings), SCOPE_PERCENTILE)),
    }
    return fitted


def add_logit_offsets(weights_path: Path, offsets: np.ndarray) -> None:
    """Rewrite the network at `weights_path` with `offsets` added to its logits layer's bias."""
    import keras

    model = keras.models.load_model(weights_path, compile=False, safe_mode=True)
    layer = model.get_layer("logits")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, (bias + offsets).astype(bias.dtype)])
    written = weights_path.with_name(weights_path.stem + ".corrected.keras")
    model.save(written)
    written.replace(weights_path)


def calibrate(card_path: Path, data_dir: Path, tta: bool = True, prior_correction: bool = False,
              log=print) -> dict:
    """Fill the card at `card_path` (which already names the weights and training run); return it.
    With `prior_correction`, correct the network's class prior first (see the module docstring)."""
    config.quiet_tensorflow()
    import keras
    from tqdm import tqdm

    from dermalens.inference import NetworkRunner, sha256_of_file

    card = json.loads(card_path.read_text())
    if "members" in card:
        raise SystemExit(f"{card_path} is an ensemble: calibrate fits one network. Calibrate each member "
                         "network on its own and assemble them with python -m dermalens.training.ensemble")
    weights_path = card_path.with_suffix(".keras")
    if sha256_of_file(weights_path) != card["sha256"]:
        raise SystemExit(f"{weights_path} does not match the SHA-256 in {card_path}")
    if prior_correction and "prior_correction" in card["training"]:
        raise SystemExit(f"{weights_path} already has its class prior corrected "
                         f"({card['training']['prior_correction']['offsets']}); calibrate it "
                         "without --prior-correction")
    model = keras.models.load_model(weights_path, compile=False, safe_mode=True)
    runner = NetworkRunner(model, card["input_size"], tta=tta)

    split = data.read_split(card_path.with_name(f"{card['name']}.split.csv"))
    rows = [row for row in data.read_ham10000(data_dir) if row["image_id"] in split]
    decoded = [decode_for_analysis((data_dir / "images" / f"{row['image_id']}.jpg").read_bytes())
               for row in tqdm(rows, desc="decoding", unit="img", mininterval=5)]
    images = [preprocessing.prepare(rgb) for rgb in decoded]
    view_statistics = device_view_statistics(rows, decoded)
    metadata = np.stack([preprocessing.encode_metadata(r["age"], r["sex"], r["site"]) for r in rows])
    labels = np.array([CLASSES.index(row["dx"]) for row in rows])
    is_val = np.array([split[row["image_id"]] == "val" for row in rows])
    log(f"running the network on {len(rows)} images (TTA {'on' if tta else 'off'})")
    logits, embeddings, statistics = served_features(runner, images, metadata, card["input_size"])
    if prior_correction:
        before = metrics.balanced_accuracy(metrics.confusion_matrix(labels[is_val], logits[is_val].argmax(1)))
        offsets = metrics.fit_prior_correction(logits[is_val], labels[is_val])
        logits = logits + offsets

    fitted_gate = fit_gate(statistics[~is_val], embeddings[~is_val], labels[~is_val],
                           statistics[is_val], embeddings[is_val],
                           view_statistics[~is_val], view_statistics[is_val])
    val_labels, val_logits = labels[is_val], logits[is_val]
    temperature = metrics.fit_temperature(val_logits, val_labels)
    probabilities = softmax(val_logits, temperature)
    report = metrics.classification_report(val_labels, probabilities)
    report["ece_uncalibrated"] = metrics.expected_calibration_error(val_labels, softmax(val_logits))
    report["confidence_intervals"] = metrics.bootstrap_intervals(val_labels, probabilities)
    val_images = [image for image, keep in zip(images, is_val) if keep]
    gate_flags = np.array([bool(fitted_gate.reasons_from(s, e))
                           for s, e in zip(statistics[is_val], embeddings[is_val])])
    small = np.array([min(image.pixels.shape[:2]) < gate.MIN_SIDE_FOR_ANALYSIS for image in val_images])
    gate_flags |= small
    table, risk = fit_risk(val_labels, probabilities, gate_flags, report["balanced_accuracy"])
    min_confidence = risk["thresholds"]["min_confidence"]
    answered = (~gate_flags) & (probabilities.max(axis=1) >= min_confidence)
    report["gate_flagged_rate"] = float(gate_flags.mean())
    report["indeterminate_rate"] = float(1 - answered.mean())
    report["balanced_accuracy_answered"] = (metrics.balanced_accuracy(metrics.confusion_matrix(
        val_labels[answered], probabilities[answered].argmax(1))) if answered.any() else None)

    report["risk_by_truth"], report["uncertain_rate"] = risk["risk_by_truth"], risk["uncertain_rate"]
    report["indeterminate_rate"] = report["gate_flagged_rate"]
    gate_file = card_path.with_name(f"{card['name']}.gate.npz")
    fitted_gate.save(gate_file)
    if prior_correction:
        add_logit_offsets(weights_path, offsets)
        card["sha256"] = sha256_of_file(weights_path)
        card["training"]["prior_correction"] = {
            "method": "per-class logit offsets minimising the class-balanced negative log-likelihood "
                      "of the validation split (metrics.fit_prior_correction), added to the logits "
                      "layer's bias",
            "offsets": dict(zip(CLASSES, map(float, offsets))),
            # Temperature does not change the top class, so the report's figure is the corrected one.
            "validation_balanced_accuracy_before": before,
            "validation_balanced_accuracy_after": report["balanced_accuracy"],
        }
        log(f"prior correction {np.round(offsets, 2)}: validation balanced accuracy {before:.3f} -> "
            f"{report['balanced_accuracy']:.3f}")
    card.update({
        "tta": tta,
        "temperature": temperature,
        "thresholds": risk["thresholds"],
        "threshold_rules": THRESHOLD_RULES,
        "validation": report,
        "coverage": table,
        "gate": {"file": gate_file.name, "sha256": sha256_of_file(gate_file),
                 "thresholds": fitted_gate.thresholds, "min_side": gate.MIN_SIDE_FOR_ANALYSIS,
                 "statistics": list(gate.STATISTIC_NAMES),
                 "method": GATE_METHOD},
        "colour_notice_threshold": gate.NOTICEABLE_COLOUR_CHANGE,
        "calibration_command": f"python -m dermalens.training.calibrate --data {data_dir} --model-card {card_path}"
                               + ("" if tta else " --no-tta") + (" --prior-correction" if prior_correction else ""),
    })
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    log(json.dumps({key: report[key] for key in ("balanced_accuracy", "balanced_accuracy_answered",
                                                 "indeterminate_rate", "gate_flagged_rate",
                                                 "auc_malignant", "ece")}, indent=2))
    log(f"melanoma recall {report['recall']['mel']}, temperature {temperature:.3f}, "
        f"min confidence {min_confidence}")
    return card


def misses_of(reference_path: Path) -> tuple[dict, str]:
    """The shares of malignant lesions and of melanomas that a reference model card sends to
    monitoring on its validation split, and the monitor rule that holds another model to them.
    ValueError, naming the file, when it is not a readable model card with a risk table."""
    reference = read_document(reference_path)
    if "name" not in reference or "version" not in reference or "out_of_fold" in reference:
        raise ValueError(f"{reference_path}: not a model card (no name and version)")
    shares = monitored_shares(risk_table(reference, reference_path))
    max_missed = {group: shares[group]["share"] for group in ("malignant", "melanoma")}
    rule = ("a benign-looking lesion is sent to monitoring only below this malignant probability (and "
            "never at 0.5 or more): set so that no larger share of malignant validation lesions "
            f"({max_missed['malignant']:.1%}), nor of melanomas ({max_missed['melanoma']:.1%}), is sent "
            f"to monitoring than {reference['name']} {reference['version']} sends on its validation split")
    return max_missed, rule


def refit_risk(card_path: Path, data_dir: Path, log=print, misses_as: Path | None = None) -> dict:
    """Refit the card's risk thresholds and risk figures on its validation split, through the
    app's own classifier (temperature, TTA and gate as the card has them); return the card.
    With `misses_as` (another model card) the monitor threshold misses no larger shares of
    malignant lesions and of melanomas than that model does on its own split (`misses_of`)."""
    max_missed, rules = None, THRESHOLD_RULES
    if misses_as is not None:  # before TensorFlow loads: a wrong reference fails at once
        max_missed, monitor_rule = misses_of(misses_as)
        rules = {**THRESHOLD_RULES, "monitor_max_malignant": monitor_rule}
    from dermalens.inference import KerasClassifier
    from dermalens.training.evaluate import evaluate

    classifier = KerasClassifier(card_path)
    card = json.loads(card_path.read_text())
    split = data.read_split(card_path.with_name(f"{card['name']}.split.csv"))
    rows = [row for row in data.read_ham10000(data_dir) if split.get(row["image_id"]) == "val"]
    results = evaluate(classifier, data_dir / "images", rows)
    gate_flags = results["indeterminate"]
    risk = risk_section(results["labels"], results["probabilities"], gate_flags,
                        card["thresholds"]["min_confidence"], max_missed)
    card["thresholds"], card["threshold_rules"] = risk["thresholds"], rules
    card["validation"].update(risk_by_truth=risk["risk_by_truth"], uncertain_rate=risk["uncertain_rate"],
                              indeterminate_rate=float(np.mean(gate_flags)))
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    log(json.dumps({"thresholds": risk["thresholds"], "risk_by_truth": risk["risk_by_truth"]}, indent=2))
    return card


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.risk_only:
        try:
            refit_risk(args.model_card, args.data, misses_as=args.misses_as)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    else:
        calibrate(args.model_card, args.data, tta=not args.no_tta, prior_correction=args.prior_correction)
    return 0


if __name__ == "__main__":
    sys.exit(main())
