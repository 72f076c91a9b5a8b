"""Images built to exhaust a worker: decoding untrusted bytes stays bounded in time and memory."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dermalens import preprocessing
from dermalens.preprocessing import InvalidImage
from tests.images import lesion_array, progressive_jpeg, scan_bomb

# What one decode may add to a worker's peak memory, whatever the file's mode and depth: the
# decoded pixels at the pixel limit (4 bytes each) and a little working space.
DECODE_MEMORY_BUDGET_MB = 256


def test_a_progressive_jpeg_from_an_encoder_decodes():
    data = progressive_jpeg(lesion_array(400, 300))
    assert 1 < preprocessing.jpeg_scan_count(data) <= preprocessing.MAX_JPEG_SCANS
    assert preprocessing.decode_image(data).shape == (300, 400, 3)


def test_a_scan_bomb_is_refused_before_decoding():
    bomb = scan_bomb(np.zeros((2000, 2000, 3), np.uint8), repeats=1000)
    assert preprocessing.jpeg_scan_count(bomb) > preprocessing.MAX_JPEG_SCANS
    with pytest.raises(InvalidImage, match="scans"):
        preprocessing.decode_image(bomb, max_side=preprocessing.DISPLAY_MAX_SIDE)


@pytest.mark.parametrize("cut", [3, 10, 200, -2, -40])
def test_counting_scans_of_a_truncated_jpeg_does_not_fail(cut):
    data = progressive_jpeg(lesion_array(64, 64))[:cut]
    assert 0 <= preprocessing.jpeg_scan_count(data) <= preprocessing.MAX_JPEG_SCANS


def test_baseline_jpeg_has_one_scan():
    buffer = io.BytesIO()
    Image.fromarray(lesion_array(64, 64)).save(buffer, "JPEG")
    assert preprocessing.jpeg_scan_count(buffer.getvalue()) == 1


_PEAK_OF_ONE_DECODE = """
import resource, sys
from dermalens import preprocessing
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rgb = preprocessing.decode_image(data, max_side=preprocessing.DISPLAY_MAX_SIDE)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(__import__("json").dumps({"added_mb": (after - before) / 1024, "shape": list(rgb.shape)}))
"""


@pytest.mark.parametrize("mode", ["I;16", "RGBA", "RGB", "P", "LA"])
def test_a_small_file_of_many_deep_pixels_decodes_within_the_memory_budget(tmp_path, mode):
    side = 6300  # 39.7 megapixels, under the pixel limit; all zero, so the PNG is tiny
    if mode == "I;16":
        image = Image.fromarray(np.zeros((side, side), np.uint16))
    else:
        image = Image.new(mode, (side, side))
    path = tmp_path / "deep.png"
    image.save(path, "PNG")
    del image
    assert path.stat().st_size < 1_000_000
    # A fresh interpreter, so the peak it reports is this decode's alone.
    result = subprocess.run([sys.executable, "-c", _PEAK_OF_ONE_DECODE, str(path)],
                            capture_output=True, text=True, check=True, timeout=120)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["shape"] == [1024, 1024, 3]
    assert measured["added_mb"] < DECODE_MEMORY_BUDGET_MB, measured
