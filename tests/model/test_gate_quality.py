"""The gate's image checks by definition: an image is overexposed when its pixels have lost
their colour (clipped in every channel, as glare does), not merely because the skin is pale; a
monochrome image is never a dermoscopic one."""

import numpy as np
import pytest

from dermalens import gate, preprocessing
from tests.images import lesion_array

LIMITS = {"min_luminance": 50.0, "max_luminance": 240.0, "max_blown_out_fraction": 0.1,
          "min_sharpness": -1.0, "max_statistics_distance": 1.0, "max_embedding_distance": 1.0}


def pale_skin_lesion() -> np.ndarray:
    """Very fair skin under a bright dermoscope: red and green near the top, blue well below."""
    rgb = lesion_array(400, 300).astype(np.int32)
    skin = rgb[..., 0] > 150
    rgb[skin] = (254, 251, 232) + np.random.default_rng(1).integers(-2, 2, (int(skin.sum()), 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def with_glare(rgb: np.ndarray, share: float) -> np.ndarray:
    """`rgb` with a blown-out band (white in every channel) over `share` of its rows."""
    glared = rgb.copy()
    glared[: int(rgb.shape[0] * share)] = 255
    return glared


def quality_reasons(rgb: np.ndarray) -> list[str]:
    statistics = gate.image_statistics(preprocessing.prepare(rgb))
    features = len(gate.STATISTIC_NAMES)
    # The distances are neutralised (every image at distance 0): only the limits and definitions speak.
    neutral = gate.Gate(statistics, np.zeros((features, features)), np.zeros((1, 4)), np.zeros((4, 4)), LIMITS)
    return neutral.reasons_from(statistics, None)


def blown_out(rgb: np.ndarray) -> float:
    return gate.image_statistics(preprocessing.prepare(rgb))[gate.STATISTIC_NAMES.index("blown_out_fraction")]


def test_pale_skin_keeps_its_colour_and_is_not_overexposed():
    assert blown_out(pale_skin_lesion()) == 0.0
    assert quality_reasons(pale_skin_lesion()) == []


@pytest.mark.parametrize("share, overexposed", [(0.05, False), (0.3, True)])
def test_glare_over_more_than_the_limit_is_overexposed(share, overexposed):
    rgb = with_glare(pale_skin_lesion(), share)
    assert blown_out(rgb) > 0
    assert (gate.REASONS["overexposed"] in quality_reasons(rgb)) is overexposed


def test_a_monochrome_image_is_out_of_scope_whatever_its_statistics_distance():
    grey = np.repeat(pale_skin_lesion().mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    assert gate.REASONS["out_of_scope"] in quality_reasons(grey)
    assert gate.REASONS["out_of_scope"] not in quality_reasons(lesion_array(400, 300))
