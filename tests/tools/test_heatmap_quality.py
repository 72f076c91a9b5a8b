"""The heatmap-quality measures: a lesion proxy and how a heatmap is scored against it."""

import numpy as np
import pytest

from tools import heatmap_quality
from tests.images import lesion_array


def test_the_lesion_proxy_finds_the_dark_blob_in_the_middle():
    square = lesion_array(160, 160)
    mask = heatmap_quality.lesion_mask(square)
    assert mask is not None and mask.shape == (160, 160)
    assert mask[80, 80] and not mask[5, 5]
    assert 0.15 < mask.mean() < 0.25  # the blob's radius is about a quarter of the side


@pytest.mark.parametrize("square", [
    np.full((160, 160, 3), 200, np.uint8),                   # nothing dark at all
    np.pad(np.full((144, 144, 3), 60, np.uint8), ((8, 8), (8, 8), (0, 0)), constant_values=220),
    np.pad(lesion_array(16, 16), ((72, 72), (72, 72), (0, 0)), constant_values=220),  # a speck
], ids=["blank", "dark-over-80%", "speck"])
def test_no_plausible_lesion_gives_no_mask(square):
    assert heatmap_quality.lesion_mask(np.ascontiguousarray(square)) is None


def test_a_heatmap_is_scored_against_the_mask_as_worked_out_by_hand():
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True                      # 4 lesion cells
    heatmap = np.zeros((4, 4))
    heatmap[0, 0], heatmap[0, 1], heatmap[3, 3] = 1.0, 0.6, 0.4
    scores = heatmap_quality.agreement(heatmap, mask)
    assert scores["pointing"] is True        # the peak (0, 0) is on the lesion
    assert scores["share_on_lesion"] == pytest.approx(1.6 / 2.0)
    assert scores["iou"] == pytest.approx(2 / 4)  # hot cells (0,0), (0,1); union is the mask
    heatmap[3, 3] = 2.0
    assert heatmap_quality.agreement(heatmap, mask)["pointing"] is False


def test_deletion_blurs_only_the_hottest_fifth():
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (20, 20, 3)).astype(np.float32)
    heatmap = np.zeros((20, 20))
    heatmap[:4] = 1.0                        # the top 4 rows: a fifth of the square
    deleted = heatmap_quality.hottest_blurred(image, heatmap)
    changed = np.any(deleted != image, axis=-1)
    assert changed[:4].mean() > 0.9 and not changed[4:].any()


def test_the_centred_blob_peaks_in_the_middle():
    blob = heatmap_quality.centred_blob(160)
    assert blob.shape == (160, 160) and blob.max() == pytest.approx(1.0, abs=1e-3)
    assert np.unravel_index(np.argmax(blob), blob.shape) in {(79, 79), (79, 80), (80, 79), (80, 80)}
    assert blob[0, 0] < 0.05
