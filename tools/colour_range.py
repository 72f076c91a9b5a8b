"""Measure the colour range of the training copies, for `preprocessing.into_colour_range`.

    python -m tools.colour_range --data ../shared/data/ham10000 \
        --split models/dermalens-resnet18s-v1.split.csv

Prints the constants `preprocessing` holds (TRAINING_ILLUMINANT_MEAN, TRAINING_CHROMA_PRECISION,
TRAINING_BRIGHTNESS_SD), estimated from the analysed squares of the training split's images.
They are part of the preprocessing every model card records, so changing them means a new card.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from dermalens import preprocessing


def fit_colour_range(illuminants: np.ndarray) -> dict:
    """Illuminant estimates (n, 3) as `preprocessing.illuminant` returns them -> the range's
    mean (3,), chromaticity precision (2, 2) (inverse sample covariance) and brightness standard
    deviation, as plain Python numbers rounded like the constants."""
    illuminants = np.asarray(illuminants, np.float64)
    if illuminants.ndim != 2 or illuminants.shape[1] != 3 or len(illuminants) < 3:
        raise ValueError("need at least three illuminant estimates of shape (3,)")
    precision = np.linalg.inv(np.cov(illuminants[:, :2].T))
    return {"mean": tuple(round(float(value), 5) for value in illuminants.mean(axis=0)),
            "chroma_precision": tuple(tuple(round(float(value), 4) for value in row) for row in precision),
            "brightness_sd": round(float(illuminants[:, 2].std(ddof=1)), 5)}


def main(argv=None) -> int:
    from dermalens.training.data import read_split

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="folder with images/<image_id>.jpg")
    parser.add_argument("--split", required=True, type=Path, help="split.csv written by dermalens.train")
    args = parser.parse_args(argv)
    if not args.split.is_file() or not (args.data / "images").is_dir():
        parser.error("--split must be a file and --data must hold an images/ folder")
    image_ids = sorted(image_id for image_id, side in read_split(args.split).items() if side == "train")
    illuminants = []
    for image_id in image_ids:
        rgb = preprocessing.decode_image((args.data / "images" / f"{image_id}.jpg").read_bytes())
        # The very region `preprocessing.network_input` estimates its gains on.
        illuminants.append(preprocessing.illuminant(preprocessing.prepare(rgb).region))
    fitted = fit_colour_range(np.stack(illuminants))
    print(f"# {len(image_ids)} training images")
    print(f"TRAINING_ILLUMINANT_MEAN = {fitted['mean']}")
    print(f"TRAINING_CHROMA_PRECISION = {fitted['chroma_precision']}")
    print(f"TRAINING_BRIGHTNESS_SD = {fitted['brightness_sd']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
