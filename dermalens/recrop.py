"""Copies of a labelled image folder at another size and crop, to test robustness to both.

    python -m dermalens.recrop --images DIR --labels CSV --out DIR [--keep 0.7] [--aspect 4:3] --size 600x450

For each image in the CSV (column image_id): keep the centred `--keep` fraction of each side,
cut the centred region of `--aspect` (width:height, default: the image's own), enlarge or shrink
to `--size` (bicubic), save as JPEG quality 92. Then run `dermalens.evaluate` on --out with the
same CSV. The model card's "Other sizes and crops" table was made this way from the validation
split (see dermalens.model_card --size-and-crop).
"""

import argparse
import csv
import sys
from pathlib import Path

import cv2

from dermalens.evaluate import find_image


def recrop(bgr, keep: float, aspect: float | None, size: tuple[int, int]):
    """Centre crop to `keep` of each side (then to `aspect` = width/height if given), resized."""
    height, width = bgr.shape[:2]
    crop_height, crop_width = round(height * keep), round(width * keep)
    if aspect:
        crop_width = min(crop_width, round(crop_height * aspect))
        crop_height = min(crop_height, round(crop_width / aspect))
    top, left = (height - crop_height) // 2, (width - crop_width) // 2
    return cv2.resize(bgr[top:top + crop_height, left:left + crop_width], size, interpolation=cv2.INTER_CUBIC)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", required=True, type=Path)
    parser.add_argument("--labels", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--keep", type=float, default=1.0, help="fraction of each side kept")
    parser.add_argument("--aspect", help="width:height of the crop, e.g. 1:1")
    parser.add_argument("--size", required=True, help="WIDTHxHEIGHT of the copies")
    args = parser.parse_args(argv)
    size = tuple(int(side) for side in args.size.lower().split("x"))
    aspect = None
    if args.aspect:
        width, height = (float(part) for part in args.aspect.split(":"))
        aspect = width / height
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.labels, newline="") as handle:
        image_ids = [row["image_id"] for row in csv.DictReader(handle)]
    for image_id in image_ids:
        source = find_image(args.images, image_id)
        if source is None:
            raise SystemExit(f"no image {image_id}.jpg or .png in {args.images}")
        bgr = cv2.imread(str(source), cv2.IMREAD_COLOR)
        cv2.imwrite(str(args.out / f"{image_id}.jpg"), recrop(bgr, args.keep, aspect, size),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
    print(f"wrote {len(image_ids)} images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
