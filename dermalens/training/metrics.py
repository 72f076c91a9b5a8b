"""Classification metrics on plain arrays, the ISIC 2018 Task 3 way (no framework dependencies).

Conventions: `labels` are int class indices in `lesions.CLASSES` order; `probabilities` is an
(n, 7) array whose rows sum to 1; confusion-matrix rows are the truth, columns the prediction.
"""

import numpy as np

from dermalens.inference import softmax
from dermalens.lesions import CLASSES, MALIGNANT_CLASSES

MALIGNANT_INDICES = [CLASSES.index(name) for name in MALIGNANT_CLASSES]
MELANOMA_INDEX = CLASSES.index("mel")


def confusion_matrix(labels, predictions, num_classes: int = len(CLASSES)) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, int), np.asarray(predictions, int)), 1)
    return matrix


def recall_per_class(matrix: np.ndarray) -> np.ndarray:
    """Per-class recall; NaN for a class with no true examples."""
    support = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(matrix) / support, np.nan)


def precision_per_class(matrix: np.ndarray) -> np.ndarray:
    """Per-class precision; NaN for a class never predicted."""
    predicted = matrix.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(predicted > 0, np.diag(matrix) / predicted, np.nan)


def balanced_accuracy(matrix: np.ndarray) -> float:
    """Mean recall over the classes present in the truth (ISIC 2018 headline metric)."""
    return float(np.nanmean(recall_per_class(matrix)))


def roc_counts(binary_labels, scores) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(false positive counts, true positive counts, negatives, positives) of the rules "positive
    if score >= t", for t from above every score (0, 0) down through each distinct score (all
    positive); tied scores always fall on the same side. The ROC curve, its area and its
    operating points are all read from these counts."""
    binary_labels = np.asarray(binary_labels, bool)
    scores = np.asarray(scores, float)
    order = np.argsort(-scores, kind="mergesort")
    hits = binary_labels[order]
    last_of_tied_scores = np.append(np.diff(scores[order]) != 0, True)[:len(scores)]
    true_positives = np.concatenate([[0], np.cumsum(hits)[last_of_tied_scores]])
    false_positives = np.concatenate([[0], np.cumsum(~hits)[last_of_tied_scores]])
    return false_positives, true_positives, int((~binary_labels).sum()), int(binary_labels.sum())


def roc_auc(binary_labels, scores) -> float:
    """Area under the ROC curve (the rank statistic: tied scores count half); NaN if one class only."""
    false_positives, true_positives, negatives, positives = roc_counts(binary_labels, scores)
    if positives == 0 or negatives == 0:
        return float("nan")
    # Trapezoids under the curve, in whole counts (twice the area) so the one division is exact.
    twice_the_area = np.sum(np.diff(false_positives) * (true_positives[1:] + true_positives[:-1]))
    return float(twice_the_area / (2 * positives * negatives))


def roc_curve(binary_labels, scores) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates) over every distinct threshold, from (0,0) to (1,1)."""
    false_positives, true_positives, negatives, positives = roc_counts(binary_labels, scores)
    return false_positives / max(1, negatives), true_positives / max(1, positives)


# Operating points clinicians compare screening tools at (sensitivity at fixed specificity).
SPECIFICITY_LEVELS = (0.80, 0.90, 0.95)


def sensitivity_at_specificity(binary_labels, scores, specificity: float) -> float:
    """The highest sensitivity of a rule "positive if score >= t" whose specificity is at least
    `specificity`, over every threshold t (tied scores fall on the same side); NaN if one class only."""
    false_positives, true_positives, negatives, positives = roc_counts(binary_labels, scores)
    if positives == 0 or negatives == 0:
        return float("nan")
    specific_enough = (negatives - false_positives) / negatives >= specificity
    return float(true_positives[specific_enough].max() / positives)


def expected_calibration_error(labels, probabilities, bins: int = 15) -> float:
    """Top-label ECE: |confidence - accuracy| averaged over equal-width confidence bins."""
    probabilities = np.asarray(probabilities, float)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels, int)
    edges = np.linspace(0.0, 1.0, bins + 1)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            error += in_bin.mean() * abs(confidence[in_bin].mean() - correct[in_bin].mean())
    return float(error)


def malignant_probability(probabilities) -> np.ndarray:
    return np.asarray(probabilities, float)[:, MALIGNANT_INDICES].sum(axis=1)


def binary_questions(labels, probabilities) -> dict:
    """{"malignant": (truth, score), "melanoma": (truth, score)}: the two yes/no questions the
    AUCs, the ROC plot and the operating points answer (mel+bcc+akiec vs rest; mel vs rest)."""
    labels = np.asarray(labels, int)
    probabilities = np.asarray(probabilities, float)
    return {"malignant": (np.isin(labels, MALIGNANT_INDICES), malignant_probability(probabilities)),
            "melanoma": (labels == MELANOMA_INDEX, probabilities[:, MELANOMA_INDEX])}


def classification_report(labels, probabilities) -> dict:
    """All headline figures for a labelled set, as JSON-ready plain Python values."""
    labels = np.asarray(labels, int)
    probabilities = np.asarray(probabilities, float)
    matrix = confusion_matrix(labels, probabilities.argmax(axis=1))
    binary = binary_questions(labels, probabilities)
    return {
        "n": int(len(labels)),
        "accuracy": float(np.trace(matrix) / max(1, matrix.sum())),
        "balanced_accuracy": balanced_accuracy(matrix),
        "recall": _per_class(recall_per_class(matrix)),
        "precision": _per_class(precision_per_class(matrix)),
        "confusion_matrix": matrix.tolist(),
        "auc_malignant": _finite_or_none(roc_auc(*binary["malignant"])),
        "auc_melanoma": _finite_or_none(roc_auc(*binary["melanoma"])),
        "ece": expected_calibration_error(labels, probabilities),
        "sensitivity_at_specificity": {
            target: {f"{level:.2f}": _finite_or_none(sensitivity_at_specificity(truth, scores, level))
                     for level in SPECIFICITY_LEVELS}
            for target, (truth, scores) in binary.items()},
    }


def bootstrap_intervals(labels, probabilities, resamples: int = 1000, level: float = 0.95,
                        seed: int = 0) -> dict:
    """Percentile-bootstrap confidence intervals of the headline figures.

    Images are resampled with replacement within each true class, so every class keeps its size
    and a recall in every resample (a plain bootstrap would drop the rarest classes now and then).
    Returns JSON-ready {"level", "resamples", "balanced_accuracy", "melanoma_recall",
    "auc_malignant", "auc_melanoma"}, each figure a [low, high] pair, or None where the figure is
    undefined on these labels (e.g. no melanoma). Deterministic for a given seed.
    Why: on 1,539 validation images with 15 dermatofibromas, one image moves that class's recall
    by 7 points, so a figure without its interval overstates what is known.
    """
    labels = np.asarray(labels, int)
    probabilities = np.asarray(probabilities, float)
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(labels == c) for c in range(len(CLASSES))]
    figures = {"balanced_accuracy": [], "melanoma_recall": [], "auc_malignant": [], "auc_melanoma": []}
    for _ in range(resamples):
        sample = np.concatenate([rng.choice(m, len(m)) for m in members if len(m)])
        truth, scores = labels[sample], probabilities[sample]
        matrix = confusion_matrix(truth, scores.argmax(axis=1))
        figures["balanced_accuracy"].append(balanced_accuracy(matrix))
        figures["melanoma_recall"].append(recall_per_class(matrix)[MELANOMA_INDEX])
        for target, question in binary_questions(truth, scores).items():
            figures[f"auc_{target}"].append(roc_auc(*question))
    tail = (1.0 - level) / 2.0 * 100.0
    intervals = {"level": level, "resamples": resamples}
    for name, values in figures.items():
        values = np.asarray(values, float)
        intervals[name] = (None if np.isnan(values).any()
                           else [float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))])
    return intervals


def interval_text(intervals: dict | None, name: str) -> str:
    """" (95% CI 0.657-0.752)" for figure `name` of a `bootstrap_intervals` result, or "" when
    there are no intervals or the figure has none."""
    bounds = (intervals or {}).get(name)
    return f" ({intervals['level']:.0%} CI {bounds[0]:.3f}-{bounds[1]:.3f})" if bounds else ""


def _finite_or_none(value: float) -> float | None:
    """JSON has no NaN: an undefined figure (e.g. AUC with one class present) becomes null."""
    return None if np.isnan(value) else float(value)


def _per_class(values: np.ndarray) -> dict:
    return {name: (None if np.isnan(value) else float(value)) for name, value in zip(CLASSES, values)}


def fit_temperature(logits, labels) -> float:
    """The temperature minimising validation negative log-likelihood (Guo et al., 2017)."""
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, int)

    def nll(temperature: float) -> float:
        probabilities = softmax(logits, temperature)
        return float(-np.log(probabilities[np.arange(len(labels)), labels] + 1e-12).mean())

    # Golden-section search on log T over [0.05, 20]: NLL is unimodal in T.
    low, high = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(80):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if nll(np.exp(a)) < nll(np.exp(b)):
            high = b
        else:
            low = a
    return float(np.exp((low + high) / 2))


def fit_prior_correction(logits, labels, steps: int = 5000) -> np.ndarray:
    """Per-class offsets (summing to 0) that, added to `logits`, minimise the class-balanced
    negative log-likelihood of `labels` (every class weighing the same, however many images it
    has): a post-hoc correction of the network's class prior, fitted by gradient descent (the
    objective is convex in the offsets).

    Why: a network trained towards a teacher's outputs at HAM10000's class frequencies learns
    those frequencies as its prior, under which a melanoma is rarely the most likely class even
    when the network ranks melanomas well; the sampler and loss weights ask for a class-balanced
    posterior. The offsets are constant per class, so each class's logit ranks images as before;
    its probability does not (a softmax divides by the other classes' shifted scores), so AUCs
    of probabilities, above all of the summed malignant probability, can move a little."""
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, int)
    classes = logits.shape[1]
    counts = np.bincount(labels, minlength=classes)
    weights = 1.0 / (counts[labels] * np.count_nonzero(counts))
    one_hot = np.eye(classes)[labels]
    offsets = np.zeros(classes)
    for _ in range(steps):
        gradient = (weights[:, None] * (softmax(logits + offsets) - one_hot)).sum(axis=0)
        offsets -= 2.0 * gradient
    return offsets - offsets.mean()
