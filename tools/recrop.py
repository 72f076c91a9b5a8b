"""Copies of a labelled image folder at another size, crop and colour, to test robustness to them.

    python -m tools.recrop --images DIR --labels CSV --out DIR [--keep 0.7] [--aspect 4:3]
        [--gains 1.15,1,0.85] [--gamma 1.3] [--round-field 1.0] --size 600x450

For each image in the CSV (column image_id): keep the centred `--keep` fraction of each side,
cut the centred region of `--aspect` (width:height, default: the image's own), enlarge or shrink
to `--size` (bicubic), multiply the red, green and blue channels by `--gains` (white balance),
apply the tone curve 255*(x/255)^gamma (exposure), black out everything outside a centred
circle of `--round-field` times the shorter side (a dermoscope's round field of view), save as
JPEG quality 92. Then run
`dermalens.evaluate` on --out with the same CSV. The model card's "Other sizes, crops and
colours" table was made this way from the validation split (see dermalens.training.model_card
--size-and-crop).
"""

import argparse
import csv
import sys
from pathlib import Path

import cv2
import numpy as np

from dermalens.training.data import find_image


def recrop(bgr, keep: float, aspect: float | None, size: tuple[int, int]):
    """Centre crop to `keep` of each side (then to `aspect` = width/height if given), resized."""
    height, width = bgr.shape[:2]
    crop_height, crop_width = round(height * keep), round(width * keep)
    if aspect:
        crop_width = min(crop_width, round(crop_height * aspect))
        crop_height = min(crop_height, round(crop_width / aspect))
    top, left = (height - crop_height) // 2, (width - crop_width) // 2
    return cv2.resize(bgr[top:top + crop_height, left:left + crop_width], size, interpolation=cv2.INTER_CUBIC)


def recolour(bgr, gains: tuple[float, float, float] = (1.0, 1.0, 1.0), gamma: float = 1.0):
    """A BGR image as if shot with another white balance (`gains` for red, green, blue) and
    tone curve 255*(x/255)^gamma; values clipped to 0-255."""
    scaled = np.clip(bgr.astype(np.float32) * np.array(gains[::-1], np.float32), 0, 255)
    return np.rint(255.0 * (scaled / 255.0) ** gamma).astype(np.uint8)


def round_field(bgr, diameter: float | None):
    """The image as a dermoscope with a round field of view shows it: black outside the centred
    circle whose diameter is `diameter` times the shorter side (anti-aliased rim); None: as is."""
    if diameter is None:
        return bgr
    height, width = bgr.shape[:2]
    mask = np.zeros((height, width), np.uint8)
    cv2.circle(mask, (width // 2, height // 2), round(diameter * min(height, width) / 2), 255, -1,
               lineType=cv2.LINE_AA)
    return np.round(bgr.astype(np.float32) * (mask[..., None] / 255.0)).astype(np.uint8)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", required=True, type=Path)
    parser.add_argument("--labels", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--keep", type=float, default=1.0, help="fraction of each side kept")
    parser.add_argument("--aspect", help="width:height of the crop, e.g. 1:1")
    parser.add_argument("--gains", default="1,1,1", help="red,green,blue multipliers, e.g. 1.15,1,0.85")
    parser.add_argument("--gamma", type=float, default=1.0, help="tone curve exponent (above 1 darkens)")
    parser.add_argument("--round-field", type=float,
                        help="black outside a centred circle of this diameter, in shorter sides (e.g. 1.0)")
    parser.add_argument("--size", required=True, help="WIDTHxHEIGHT of the copies")
    args = parser.parse_args(argv)
    try:
        size = tuple(int(side) for side in args.size.lower().split("x"))
        aspect = None
        if args.aspect:
            width, height = (float(part) for part in args.aspect.split(":"))
            aspect = width / height
        gains = tuple(float(gain) for gain in args.gains.split(","))
    except (ValueError, ZeroDivisionError):
        parser.error("--size must look like 600x450, --aspect like 4:3 and --gains like 1.15,1,0.85")
    # (Written so that NaN fails every comparison and is refused too.)
    if len(gains) != 3 or not all(0 < gain < 10 for gain in gains) or not 0 < args.gamma < 10:
        parser.error("--gains takes three multipliers and --gamma an exponent, each above 0 and below 10")
    if len(size) != 2 or min(size) < 1 or (aspect is not None and aspect <= 0):
        parser.error("--size must look like 600x450 and --aspect like 4:3")
    if not 0.0 < args.keep <= 1.0:
        parser.error("--keep must be above 0 and at most 1")
    if args.round_field is not None and not 0.1 <= args.round_field <= 2.0:
        parser.error("--round-field must be between 0.1 and 2 (shorter sides)")
    if not args.labels.is_file():
        parser.error(f"no labels file {args.labels}")
    with open(args.labels, newline="") as handle:
        reader = csv.DictReader(handle)
        if "image_id" not in (reader.fieldnames or []):
            parser.error(f"{args.labels} has no image_id column")
        image_ids = [row["image_id"] for row in reader]
    # Every source is found before anything is written, and a copy set that cannot be finished
    # is removed, so a bad folder or image never leaves a partial set behind to be evaluated.
    sources = {image_id: find_image(args.images, image_id) for image_id in image_ids}
    missing = [image_id for image_id, source in sources.items() if source is None]
    if missing:
        raise SystemExit(f"no image {missing[0]}.jpg or .png in {args.images} "
                         f"({len(missing)} labelled images missing)")
    created = not args.out.exists()
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for image_id, source in sources.items():
        bgr = cv2.imread(str(source), cv2.IMREAD_COLOR)
        if bgr is None:
            for path in written:
                path.unlink()
            if created:
                args.out.rmdir()
            raise SystemExit(f"cannot decode {source}; no copies written")
        target = args.out / f"{image_id}.jpg"
        copy = round_field(recolour(recrop(bgr, args.keep, aspect, size), gains, args.gamma), args.round_field)
        cv2.imwrite(str(target), copy, [cv2.IMWRITE_JPEG_QUALITY, 92])
        written.append(target)
    print(f"wrote {len(image_ids)} images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
