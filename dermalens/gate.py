"""Know when not to answer: image quality and scope checks before a diagnosis is shown.

Three families of checks, their thresholds measured on the validation split of the training
data and device-style views of it (see `dermalens.training.calibrate`); the only fixed levels are
definitions (what a blown-out pixel and a monochrome image are):

- quality: too small, too dark, overexposed, too blurred (image statistics of the network's input
  square, so they do not depend on the upload's resolution);
- scope by appearance: Mahalanobis distance of 15 colour/texture statistics from those of
  dermoscopic images (catches blanks, gradients, noise, documents, screenshots), and no colour
  at all (a monochrome image is never a dermoscopic one);
- scope by the network's own features: class-conditional Mahalanobis distance of the pooled
  embedding (Lee et al., 2018), which catches natural photos the statistics alone miss.

The parameters live in `models/<name>.gate.npz` (plain arrays, loaded without pickle) and the
thresholds in the model card.
"""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dermalens import preprocessing

# Statistics are computed on the analysed square at this size, whatever the upload size.
STATISTICS_SIZE = 128
# Below the network's input size the image would be upsampled: too little detail to assess.
MIN_SIDE_FOR_ANALYSIS = 128

# A pixel at this level in all three channels has lost its colour (glare, or the sensor clipped);
# pale skin under a bright dermoscope is near white too, but keeps its blue channel below it.
BLOWN_OUT_LEVEL = 250

# Below this mean saturation (HSV, 0-255) an image is monochrome: a scan, an X-ray, a black-and-
# white photo. Dermoscopes record colour; their least colourful images sit far above it.
MONOCHROME_SATURATION = 8.0

STATISTIC_NAMES = (
    "luminance_mean", "luminance_std", "blown_out_fraction", "dark_fraction", "sharpness",
    "a_mean", "a_std", "b_mean", "b_std", "saturation_mean", "saturation_std",
    "edge_density", "colourfulness", "high_frequency_ratio", "channel_correlation",
)

REASONS = {
    "too_small": "The image is too small to assess ({width}x{height} pixels; at least "
                 f"{MIN_SIDE_FOR_ANALYSIS} pixels per side are needed).",
    "too_dark": "The image is too dark to assess. Retake it with more light.",
    "overexposed": "The image is overexposed (washed out). Retake it with less light or glare.",
    "blurred": "The image is too blurred to assess. Retake it in focus.",
    "out_of_scope": "This does not look like a dermoscopic image of a skin lesion. The tool only "
                    "assesses dermoscopic images.",
    "low_confidence": "The model is uncertain: no diagnosis reaches {confidence:.0%} probability "
                      "(the top one has {top:.0%}).",
}


def image_statistics(prepared: preprocessing.PreparedImage) -> np.ndarray:
    """The STATISTIC_NAMES vector (float64) of a prepared image's analysed square."""
    square = prepared.resized_region(STATISTICS_SIZE)
    gray = cv2.cvtColor(square, cv2.COLOR_RGB2GRAY).astype(np.float64)
    lab = cv2.cvtColor(square, cv2.COLOR_RGB2LAB).astype(np.float64)
    hsv = cv2.cvtColor(square, cv2.COLOR_RGB2HSV).astype(np.float64)
    laplacian = cv2.Laplacian(gray, cv2.CV_64F)
    gradient = np.hypot(cv2.Sobel(gray, cv2.CV_64F, 1, 0), cv2.Sobel(gray, cv2.CV_64F, 0, 1))
    blurred = cv2.GaussianBlur(gray, (0, 0), 2.0)
    red, green, blue = (square[..., i].astype(np.float64) for i in range(3))
    rg, yb = red - green, 0.5 * (red + green) - blue
    channels = square.reshape(-1, 3).astype(np.float64)
    correlation = np.corrcoef(channels.T) if channels.std(axis=0).min() > 1e-6 else np.ones((3, 3))
    return np.array([
        gray.mean(),
        gray.std(),
        (square.min(axis=2) >= BLOWN_OUT_LEVEL).mean(),
        (gray < 15).mean(),
        np.log1p(laplacian.var()),
        lab[..., 1].mean(), lab[..., 1].std(), lab[..., 2].mean(), lab[..., 2].std(),
        hsv[..., 1].mean(), hsv[..., 1].std(),
        (gradient > 100).mean(),
        np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()),
        np.log1p(np.abs(gray - blurred).mean()) - np.log1p(gray.std()),
        (correlation[0, 1] + correlation[0, 2] + correlation[1, 2]) / 3.0,
    ], dtype=np.float64)


def fit_gaussian(samples: np.ndarray, shrinkage: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Mean and precision matrix with shrinkage towards the diagonal (stable for near-singular data)."""
    samples = np.asarray(samples, np.float64)
    mean = samples.mean(axis=0)
    covariance = np.cov(samples - mean, rowvar=False)
    covariance = (1 - shrinkage) * covariance + shrinkage * np.diag(np.diag(covariance))
    covariance += np.eye(len(mean)) * 1e-6 * np.trace(covariance) / len(mean)
    return mean, np.linalg.inv(covariance)


def fit_class_conditional(embeddings: np.ndarray, labels: np.ndarray, classes: int,
                          shrinkage: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Means of the classes present and one shared (tied) precision matrix (Lee et al., 2018)."""
    embeddings = np.asarray(embeddings, np.float64)
    present = [c for c in range(classes) if (labels == c).any()]
    means = np.stack([embeddings[labels == c].mean(axis=0) for c in present])
    centred = embeddings - means[np.searchsorted(present, labels)]
    covariance = centred.T @ centred / len(embeddings)
    covariance = (1 - shrinkage) * covariance + shrinkage * np.diag(np.diag(covariance))
    covariance += np.eye(covariance.shape[0]) * 1e-6 * np.trace(covariance) / covariance.shape[0]
    return means, np.linalg.inv(covariance)


def mahalanobis(samples: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Distances of each row of `samples` (n, d) from `mean` (d,) or the nearest of means (k, d)."""
    samples = np.atleast_2d(np.asarray(samples, np.float64))
    means = np.atleast_2d(mean)
    distances = []
    for centre in means:
        delta = samples - centre
        distances.append(np.einsum("ij,jk,ik->i", delta, precision, delta))
    return np.sqrt(np.maximum(np.min(distances, axis=0), 0.0))


@dataclass
class Gate:
    """Fitted gate: parameters (arrays) and thresholds (numbers) for every check."""

    statistics_mean: np.ndarray
    statistics_precision: np.ndarray
    embedding_means: np.ndarray
    embedding_precision: np.ndarray
    thresholds: dict

    def statistics_distance(self, statistics: np.ndarray) -> np.ndarray:
        return mahalanobis(statistics, self.statistics_mean, self.statistics_precision)

    def embedding_distance(self, embeddings: np.ndarray) -> np.ndarray:
        return mahalanobis(embeddings, self.embedding_means, self.embedding_precision)

    def reasons_from(self, statistics: np.ndarray, embedding: np.ndarray | None) -> list[str]:
        """Human-readable reasons an image with these statistics (`image_statistics`) and pooled
        embedding (None: not checked) cannot be assessed; empty if it can.

        The scope verdict comes first, then every quality problem found (a white document is
        "not a dermoscopic image" before it is "overexposed"). Size is checked by `CombinedGate`.
        """
        limits = self.thresholds
        values = dict(zip(STATISTIC_NAMES, statistics))
        reasons = []
        out_of_scope = (self.statistics_distance(statistics)[0] > limits["max_statistics_distance"]
                        or values["saturation_mean"] < MONOCHROME_SATURATION)
        if embedding is not None:
            out_of_scope |= bool(self.embedding_distance(embedding)[0] > limits["max_embedding_distance"])
        if out_of_scope:
            reasons.append(REASONS["out_of_scope"])
        if values["luminance_mean"] < limits["min_luminance"]:
            reasons.append(REASONS["too_dark"])
        if (values["luminance_mean"] > limits["max_luminance"]
                or values["blown_out_fraction"] > limits["max_blown_out_fraction"]):
            reasons.append(REASONS["overexposed"])
        if values["sharpness"] < limits["min_sharpness"]:
            reasons.append(REASONS["blurred"])
        return reasons

    def save(self, path: Path) -> None:
        np.savez(path, statistics_mean=self.statistics_mean,
                 statistics_precision=self.statistics_precision,
                 embedding_means=self.embedding_means, embedding_precision=self.embedding_precision)

    @classmethod
    def load(cls, path: Path, thresholds: dict) -> "Gate":
        with np.load(path, allow_pickle=False) as arrays:
            return cls(arrays["statistics_mean"], arrays["statistics_precision"],
                       arrays["embedding_means"], arrays["embedding_precision"], dict(thresholds))


class CombinedGate:
    """The gates of a model's member networks, run as one (`members`, in member order; a single
    network's model has one).

    An image is declined when any member's gate would decline it: each member's embedding check
    knows only its own network's features, and an ensemble answer rests on every member. The
    image statistics are computed once and the reasons are given once each, in the order the
    first gate to give them gives them.
    """

    def __init__(self, members: list[Gate]):
        self.members = tuple(members)

    def reasons(self, prepared: preprocessing.PreparedImage,
                embeddings: tuple[np.ndarray, ...] | None) -> list[str]:
        """Human-readable reasons this prepared image cannot be assessed; empty if it can.
        `embeddings`: each member network's pooled features, in member order (None: the
        embedding checks are skipped)."""
        height, width = prepared.pixels.shape[:2]
        if min(height, width) < MIN_SIDE_FOR_ANALYSIS:
            return [REASONS["too_small"].format(width=width, height=height)]
        statistics = image_statistics(prepared)
        reasons: list[str] = []
        for member, embedding in zip(self.members, embeddings or [None] * len(self.members)):
            reasons += [reason for reason in member.reasons_from(statistics, embedding) if reason not in reasons]
        return reasons


def confidence_reasons(probabilities: dict[str, float], min_confidence: float) -> list[str]:
    """A reason when the calibrated top probability is below the validated minimum."""
    top = max(probabilities.values())
    if top < min_confidence:
        return [REASONS["low_confidence"].format(confidence=min_confidence, top=top)]
    return []


# Below this change in every channel a colour correction is not worth the clinician's attention:
# it is within how the training images' own rendering varies (HAM10000: 3.4% of the validation
# images get a notice, 15% are corrected at all).
NOTICEABLE_COLOUR_CHANGE = 0.05
# A correction whose channels differ from their mean by less than this (in log gain) changed
# the exposure only; one whose mean is this close to 0 changed the white balance only.
_ONE_SIDED = 0.02


def colour_notices(colour_gains) -> list[str]:
    """A sentence for the clinician when the network saw the image's colours adjusted by more
    than NOTICEABLE_COLOUR_CHANGE in some channel (`Prediction.colour_gains`); else none.

    A notice, not an indeterminate reason. The model card shows images under a colour cast or
    underexposed are assessed less well as a group (what the notice tells), but the notice does
    not single out the worse ones: within the recoloured copies of the validation split, images
    with a notice were right more often than those without under a warm cast or underexposure,
    and less often under a green tint (docs/model-history.md; `dermalens.evaluate` measures it).
    """
    if colour_gains is None:
        return []
    gains = np.asarray(colour_gains, dtype=np.float64)
    change = float(np.max(np.abs(gains - 1.0)))
    if change <= NOTICEABLE_COLOUR_CHANGE:
        return []
    log_gains = np.log(gains)
    exposure = float(log_gains.mean())
    if float(np.max(np.abs(log_gains - exposure))) < _ONE_SIDED:
        finding = f"the image is {'darker' if exposure > 0 else 'brighter'} than almost all training images"
    elif abs(exposure) < _ONE_SIDED:
        finding = "its white balance (colour cast) is outside the training images' range"
    else:
        finding = "its white balance and exposure are outside the training images' range"
    return [f"Colours adjusted before analysis: {finding} (channels scaled by up to {change:.0%}). "
            "The model is less accurate on such images; retake at standard dermoscope settings if "
            "you can."]
