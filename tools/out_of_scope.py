"""Build a folder of out-of-scope images (not dermoscopic lesion photos) to measure the gate.

    python -m tools.out_of_scope --out DIR [--seed N]

Everyday photos and faces come from the samples bundled with scikit-image (a dev dependency);
blanks, gradients, noise, text renders, documents and screenshots are generated. The file name
prefix says the kind, so results can be broken down by kind.
"""

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

SKIMAGE_SAMPLES = ("astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins",
                   "colorwheel", "grass", "gravel", "horse", "hubble_deep_field",
                   "immunohistochemistry", "logo", "microaneurysms", "moon", "page", "retina",
                   "rocket", "text", "checkerboard", "stereo_motorcycle", "shepp_logan_phantom")
WORDS = ("patient referral clinic dermatology report results follow-up lesion appointment "
         "history invoice summary meeting schedule notes review table total page").split()


def _rgb(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype != np.uint8:
        array = (255 * (array - array.min()) / max(float(np.ptp(array)), 1e-9)).astype(np.uint8)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    return np.ascontiguousarray(array[..., :3])


def photos(rng) -> dict[str, np.ndarray]:
    """Bundled scikit-image photos, each whole and as two random crops."""
    import skimage.data

    images = {}
    for name in SKIMAGE_SAMPLES:
        try:
            sample = getattr(skimage.data, name)()
        # Some samples need a download, which may be impossible here: skip those.
        except Exception:  # noqa: BLE001  # nosec B112
            continue
        if isinstance(sample, tuple):
            sample = sample[0]
        rgb = _rgb(sample)
        images[f"photo-{name}"] = rgb
        height, width = rgb.shape[:2]
        for index in range(2):
            side = int(min(height, width) * rng.uniform(0.5, 0.8))
            top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
            images[f"photo-{name}-crop{index}"] = rgb[top:top + side, left:left + side]
    try:
        faces = skimage.data.lfw_subset()
        for index in rng.choice(len(faces), 20, replace=False):
            face = cv2.resize(_rgb(faces[index]), (300, 300), interpolation=cv2.INTER_CUBIC)
            images[f"face-{index}"] = face
    # The faces need a download on some installs: then there are simply no faces.
    except Exception:  # noqa: BLE001  # nosec B110
        pass
    return images


def blanks(rng, count=20) -> dict[str, np.ndarray]:
    colours = [(255, 255, 255), (0, 0, 0), (128, 128, 128), (225, 180, 160), (200, 150, 130),
               (160, 110, 90)] + [tuple(rng.integers(0, 256, 3)) for _ in range(count - 6)]
    return {f"blank-{i}": np.full((450, 600, 3), colour, np.uint8) for i, colour in enumerate(colours)}


def gradients(rng, count=20) -> dict[str, np.ndarray]:
    images = {}
    y, x = np.mgrid[0:450, 0:600] / np.array([450.0, 600.0])[:, None, None]
    for i in range(count):
        start, end = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        if i % 2:
            t = np.clip(np.hypot(x - 0.5, y - 0.5) / 0.7, 0, 1)
        else:
            angle = rng.uniform(0, np.pi)
            t = (x * np.cos(angle) + y * np.sin(angle))
            t = (t - t.min()) / np.ptp(t)
        images[f"gradient-{i}"] = (start + (end - start) * t[..., None]).astype(np.uint8)
    return images


def noise(rng, count=20) -> dict[str, np.ndarray]:
    images = {}
    for i in range(count):
        kind = i % 4
        if kind == 0:
            array = rng.normal(128, 60, (450, 600, 3))
        elif kind == 1:
            array = rng.uniform(0, 255, (450, 600, 3))
        elif kind == 2:
            array = np.where(rng.random((450, 600, 1)) > 0.5, 255, 0) * np.ones(3)
        else:  # smooth coloured noise (blotches)
            array = cv2.resize(rng.uniform(0, 255, (12, 16, 3)), (600, 450), interpolation=cv2.INTER_CUBIC)
        images[f"noise-{i}"] = np.clip(array, 0, 255).astype(np.uint8)
    return images


def _font(size):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def text_renders(rng, count=20) -> dict[str, np.ndarray]:
    images = {}
    for i in range(count):
        background = (255, 255, 255) if i % 3 else tuple(int(v) for v in rng.integers(150, 256, 3))
        image = Image.new("RGB", (600, 450), background)
        draw = ImageDraw.Draw(image)
        size = int(rng.integers(14, 48))
        for line in range(int(450 / (size * 1.4))):
            words = " ".join(rng.choice(WORDS, int(rng.integers(2, 8))))
            draw.text((20, 10 + line * size * 1.4), words, fill=(0, 0, 0), font=_font(size))
        images[f"text-{i}"] = np.asarray(image)
    return images


def screenshots(rng, count=15) -> dict[str, np.ndarray]:
    images = {}
    for i in range(count):
        image = Image.new("RGB", (800, 500), (245, 246, 248))
        draw = ImageDraw.Draw(image)
        draw.rectangle((0, 0, 800, 50), fill=tuple(int(v) for v in rng.integers(0, 200, 3)))
        draw.rectangle((0, 50, 160, 500), fill=(230, 232, 236))
        for row in range(8):
            top = 70 + row * 50
            draw.rectangle((180, top, 780, top + 38), outline=(200, 200, 200), fill=(255, 255, 255))
            draw.text((190, top + 10), " ".join(rng.choice(WORDS, 4)), fill=(30, 30, 30), font=_font(16))
            if row % 3 == 0:
                draw.rectangle((650, top + 8, 760, top + 30), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        images[f"screenshot-{i}"] = np.asarray(image)
    return images


def build(out: Path, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    images = {}
    for family in (photos, blanks, gradients, noise, text_renders, screenshots):
        images.update(family(rng))
    for name, rgb in images.items():
        Image.fromarray(rgb).save(out / f"{name}.png")
    return len(images)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"wrote {build(args.out, args.seed)} images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
