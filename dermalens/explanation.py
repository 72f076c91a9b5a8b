"""Grad-CAM overlays: turn the network's heatmap into a picture a clinician can read."""

import cv2
import numpy as np

# What every screen, report and API text calls the picture (the method is Grad-CAM's LayerCAM
# variant; one name, so nobody wonders whether two pictures differ).
HEATMAP_NAME = "Grad-CAM heatmap"

OVERLAY_OPACITY = 0.45
# The network sees only its analysed square; the rest of the image is dimmed in the overlay so
# nobody reads "cold" where the model never looked.
OUTSIDE_DIMMING = 0.45


def overlay_heatmap(rgb: np.ndarray, heatmap: np.ndarray, square: tuple[int, int, int]) -> np.ndarray:
    """Blend a [0, 1] heatmap of the analysed square onto the whole image.

    :param rgb: (H, W, 3) uint8 image, as stored.
    :param heatmap: (S, S) float map over the analysed square (any S); NaN is treated as 0.
    :param square: (top, left, side) of the analysed square in `rgb`'s pixels
        (`PreparedImage.square_on(rgb.shape)`).
    :return: (H, W, 3) uint8 overlay, the same size as `rgb`.
    """
    top, left, side = square
    heat = np.nan_to_num(np.asarray(heatmap, np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    heat = cv2.resize(np.clip(heat, 0.0, 1.0), (side, side), interpolation=cv2.INTER_LINEAR)
    colours = cv2.cvtColor(cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET),
                           cv2.COLOR_BGR2RGB)

    overlay = cv2.convertScaleAbs(rgb, alpha=1.0 - OUTSIDE_DIMMING)
    square = rgb[top:top + side, left:left + side]
    overlay[top:top + side, left:left + side] = cv2.addWeighted(
        square, 1.0 - OVERLAY_OPACITY, colours, OVERLAY_OPACITY, 0.0)
    return overlay
