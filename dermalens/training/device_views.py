"""Device-style views of a training image: the same lesion as another dermoscope might show it.

HAM10000 comes from two centres. A network trained on it alone learns their cameras (colour
rendering, compression, magnification) as much as their lesions, and fails on other devices. Each
view re-renders one training image with another magnification (zoomed in, as a 20x contact
dermoscope fills the frame, or out), rotation, white balance, exposure and tone curve,
saturation, blur, sensor noise, vignetting, hair and JPEG quality.

Views are deterministic: view `index` of image `image_id` is drawn from a generator seeded by
both, so a teacher's outputs on a fixed set of views can be computed once and cached, and the
student trained later on exactly the views the teacher saw ("function matching", Beyer et al.,
CVPR 2022). `VERSION` numbers the recipe: a cache made with another version is refused.

A view is a square uint8 RGB image of VIEW_SIZE pixels, as an upload would be; the student sees
it through the app's own pipeline (`preprocessing.prepare`, then `network_input`), exactly as a
served upload.
"""

import io
import zlib

import cv2
import numpy as np
from PIL import Image

VERSION = 1
VIEW_SIZE = 192


def view_rng(image_id: str, index: int) -> np.random.Generator:
    """The generator of view `index` of `image_id` (stable across runs, machines and Pythons)."""
    return np.random.default_rng([zlib.crc32(image_id.encode()), index, VERSION])


def render_view(rgb: np.ndarray, image_id: str, index: int, size: int = VIEW_SIZE) -> np.ndarray:
    """View `index` of the decoded training image `rgb` (H, W, 3 uint8): (size, size, 3) uint8.

    View 0 is the plain analysed-style centre square (no re-rendering), so every cache holds the
    image as it is too.
    """
    height, width = rgb.shape[:2]
    if index == 0:
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        return cv2.resize(rgb[top:top + side, left:left + side], (size, size), interpolation=cv2.INTER_AREA)
    rng = view_rng(image_id, index)
    image = _geometry(rgb, rng, size).astype(np.float32) / 255.0
    image = _colour(image, rng)
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.8))
    if rng.random() < 0.3:
        image = image + rng.normal(0.0, rng.uniform(0.005, 0.025), image.shape).astype(np.float32)
    if rng.random() < 0.3:
        image = _vignette(image, rng)
    view = np.clip(image * 255.0, 0, 255).round().astype(np.uint8)
    if rng.random() < 0.2:
        view = _hair(view, rng)
    if rng.random() < 0.6:
        view = _jpeg(view, int(rng.integers(35, 96)))
    return view


def _geometry(rgb: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """A square around the (centred) lesion at another magnification, rotated and flipped.

    Zoomed in (a smaller square, up to 2.8x) three times in four, else zoomed out (the image
    shrunk inside a mirrored surround, down to 0.7x); the centre wanders by up to 8% of the side.
    """
    height, width = rgb.shape[:2]
    short = min(height, width)
    side = short * (rng.uniform(0.36, 1.0) if rng.random() < 0.75 else rng.uniform(1.0, 1.45))
    centre = np.array([width / 2, height / 2]) + rng.uniform(-0.08, 0.08, 2) * short
    angle = rng.uniform(0, 360)
    scale = size / side
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    matrix[:, 2] += np.array([size / 2, size / 2]) - centre
    square = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA,
                            borderMode=cv2.BORDER_REFLECT_101)
    if rng.random() < 0.5:
        square = square[:, ::-1]
    return np.ascontiguousarray(square)


def _colour(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Another white balance, exposure, tone curve and saturation (float image in [0, 1])."""
    gains = rng.uniform(0.8, 1.2, 3) * rng.uniform(0.8, 1.2)
    image = np.clip(image * gains.astype(np.float32), 1e-6, 1.0) ** np.float32(np.exp(rng.uniform(-0.35, 0.35)))
    grey = image.mean(axis=2, keepdims=True)
    return grey + (image - grey) * np.float32(rng.uniform(0.7, 1.3))


def _vignette(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Light falling off towards the corners, as through many dermoscope optics."""
    size = image.shape[0]
    grid = np.linspace(-1, 1, size, dtype=np.float32)
    radius = np.sqrt(grid[None] ** 2 + grid[:, None] ** 2) / np.sqrt(2)
    return image * (1.0 - rng.uniform(0.2, 0.6) * radius ** 2)[..., None]


def _hair(view: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A few dark, thin, gently curved hairs across the image."""
    size = view.shape[0]
    drawn = view.copy()
    for _ in range(int(rng.integers(1, 6))):
        start, end = rng.uniform(0, size, 2), rng.uniform(0, size, 2)
        bend = rng.uniform(-0.08, 0.08) * size
        points = [start + (end - start) * t + np.array([-(end - start)[1], (end - start)[0]])
                  / max(np.linalg.norm(end - start), 1) * bend * 4 * t * (1 - t)
                  for t in np.linspace(0, 1, 12)]
        dark = int(rng.integers(10, 60))
        colour = (dark + 12, dark + 6, dark)  # dark brown to black
        cv2.polylines(drawn, [np.round(points).astype(np.int32)], False, colour,
                      thickness=int(rng.integers(1, 3)), lineType=cv2.LINE_AA)
    return drawn


def _jpeg(view: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(view).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"), dtype=np.uint8)
