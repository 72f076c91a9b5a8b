"""Image decoding and preprocessing shared by training, evaluation and the web app.

Contract: an image reaches the network in three named stages, each computed once per upload:

1. `decode_image`: untrusted bytes -> the decoded image, 8-bit RGB (what the app stores);
2. `prepare`: the decoded image -> a `PreparedImage`: made like the training copies
   (`match_training_copies`), the outside of a round field of view filled in
   (`fill_outside_field`), and with the square the network analyses (`analysed_square`). The
   classifier, the image gate and the heatmap overlay all take this one object, so none of them
   matches the image or searches for its field of view again;
3. `network_input`: the prepared image -> a `NetworkInput`: the analysed square at the network's
   size, brought into the training colour range, with the gains that did it and the float tensor.

Training builds its canvases and validation tensors with the same `prepare` and `network_input`
the server calls, so a served image and a validation image of the same file give the same tensor.

The network only ever saw the HAM10000 training copies: 200x150 downscales saved as JPEG at
quality 75. A sharper or larger upload is first brought to that same resolution and compression,
so the network, its calibration and the gate see the kind of image they were fitted on rather
than detail and texture they never met. Likewise for colour: an image whose overall colour cast
or exposure lies outside the range of the training copies is brought back to the edge of that
range (`into_colour_range`) before the network sees it; an image inside the range is left as is.

`VERSION` numbers what this module does to an image and its metadata. A model card records the
version its network was trained with, and the app refuses a card of another version.
"""

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps

from dermalens.lesions import BODY_SITES, MAX_AGE, SEXES

# Bump whenever a change here alters a network input (pixels or metadata): cards of the old
# version are then refused until the network is retrained and re-calibrated, or, for a change
# measured not to hurt it, assembled anew with `training.ensemble --carry-over-preprocessing`.
VERSION = 4

# Formats we accept, judged by content. Anything else (GIF, TIFF, WebP, SVG...) is refused.
ACCEPTED_FORMATS = ("JPEG", "PNG")
# 6000x4000 camera photos are 24 MP; anything far above that is refused before decoding.
MAX_PIXELS = 40_000_000
MIN_SIDE = 32
# A progressive JPEG refines its image in scans; encoders write about ten. Each scan costs a pass
# over the whole coefficient buffer, so a file repeating scans (a "scan bomb") takes seconds to
# minutes to decode; more than this many is refused before decoding.
MAX_JPEG_SCANS = 64

_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")

# Uploads are decoded to at most this size (the app stores and analyses that copy): enough to
# read a lesion on screen and in print, and it bounds disk use and heatmap cost for 24-megapixel
# uploads.
DISPLAY_MAX_SIDE = 1024

# How the training copies were made (data README: 200x150 downscales of the 600x450 originals;
# quality 75 read from their JPEG quantisation tables, with 4:2:0 chroma subsampling).
TRAINING_SHORT_SIDE = 150
TRAINING_JPEG_QUALITY = 75

# Length of the metadata vector: age (value, known flag) + one-hot sex + one-hot body site.
METADATA_SIZE = 2 + len(SEXES) + len(BODY_SITES)


class InvalidImage(ValueError):
    """The bytes are not an acceptable JPEG/PNG image; the message is safe to show to a user."""


def decode_image(data: bytes, max_side: int | None = None) -> np.ndarray:
    """Decode untrusted JPEG/PNG bytes into an (H, W, 3) uint8 RGB array.

    EXIF orientation is applied; alpha, palette, grayscale, CMYK and 16-bit images are normalised
    to 8-bit RGB; only the first frame of an animation is used. With `max_side`, the result is
    shrunk (aspect kept) so that its longer side is at most `max_side`; large JPEGs are then decoded
    at reduced scale, which is much faster.

    :raise InvalidImage: empty data, a format other than JPEG/PNG, too many or too few pixels,
        or a truncated / corrupt file.
    """
    if not data:
        raise InvalidImage("The file is empty.")
    if not data.startswith(_MAGIC):
        raise InvalidImage("The file is not a JPEG or PNG image.")
    if data.startswith(_MAGIC[0]) and jpeg_scan_count(data) > MAX_JPEG_SCANS:
        raise InvalidImage(f"The JPEG has more than {MAX_JPEG_SCANS} scans; no camera writes that "
                           "many. Export it again as a baseline JPEG or a PNG.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise InvalidImage(
                    f"The image has too many pixels ({width}x{height}); the limit is "
                    f"{MAX_PIXELS // 1_000_000} megapixels."
                )
            if min(width, height) < MIN_SIDE:
                raise InvalidImage(
                    f"The image is too small ({width}x{height}); each side needs at least "
                    f"{MIN_SIDE} pixels."
                )
            if max_side and image.format == "JPEG":
                # draft() picks a DCT scale that keeps both sides >= the requested size.
                image.draft("RGB", (max_side, max_side))
            image.load()
            if max_side:
                image = _reduced(image, max_side)
            image = ImageOps.exif_transpose(image)
            rgb = _to_rgb8(image, max_side)
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InvalidImage(f"The image has too many pixels; the limit is "
                           f"{MAX_PIXELS // 1_000_000} megapixels.") from error
    except (OSError, SyntaxError, ValueError, MemoryError, EOFError) as error:
        raise InvalidImage("The image file is damaged or incomplete.") from error
    if max_side and max(rgb.shape[:2]) > max_side:
        rgb = _shrink_to(rgb, max_side)
    return rgb


def jpeg_scan_count(data: bytes) -> int:
    """The number of scans (SOS markers) in JPEG bytes, found without decoding.

    Walks the marker segments; after each scan header it skips the entropy-coded data, where
    0xFF is followed by a stuffed 0x00 or a restart marker. A truncated file counts what it has.
    """
    scans, position, end = 0, 2, len(data)
    while position + 4 <= end:
        if data[position] != 0xFF:
            return scans  # not a marker: corrupt, left to the decoder to report
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xD9:  # end of image
            return scans
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # restart / TEM: no length
            position += 2
            continue
        length = int.from_bytes(data[position + 2:position + 4], "big")
        position += 2 + length
        if marker != 0xDA:
            continue
        scans += 1
        if scans > MAX_JPEG_SCANS:
            return scans
        while True:  # entropy-coded data up to the next real marker
            position = data.find(b"\xff", position)
            if position < 0 or position + 1 >= end:
                return scans
            following = data[position + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:
                position += 2
                continue
            break
    return scans


# Modes Image.reduce() works on; other modes are converted first (16-bit grayscale goes through
# numpy in `_to_rgb8`).
_REDUCIBLE_MODES = ("L", "LA", "RGB", "RGBA", "CMYK", "I", "F")


def _reduced(image: Image.Image, max_side: int) -> Image.Image:
    """A large decoded image box-reduced by a whole factor towards `max_side`, as JPEG's draft()
    does while decoding, so that no later step holds more than one full-size copy."""
    factor = max(image.size) // max_side
    if factor < 2 or image.mode.startswith("I;16"):
        return image
    if image.mode not in _REDUCIBLE_MODES:
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    return image.reduce(factor)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


# 16-bit to 8-bit by scaling (v // 257), not clipping, as a table: no float copy of a large image.
_SIXTEEN_TO_EIGHT_BITS = (np.arange(65536) // 257).astype(np.uint8)


def _to_rgb8(image: Image.Image, max_side: int | None = None) -> np.ndarray:
    """Any Pillow mode -> contiguous (H, W, 3) uint8 RGB; transparency is composed on white.

    A 16-bit grayscale image is shrunk to `max_side` (if given) while still 16-bit, so its peak
    memory stays within two 16-bit copies of the file's pixels.
    """
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        wide = np.asarray(image)
        if wide.dtype != np.uint16:
            wide = np.clip(wide, 0, 65535).astype(np.uint16)
        if max_side and max(wide.shape) > max_side:
            wide = _shrink_to(wide, max_side)
        image = Image.fromarray(_SIXTEEN_TO_EIGHT_BITS[wide])
    if _has_alpha(image):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def _shrink_to(rgb: np.ndarray, max_side: int) -> np.ndarray:
    height, width = rgb.shape[:2]
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


# Many dermoscopes have a round field of view that leaves the image's corners (or a circle
# around the lesion) black. The network never learnt black corners (analysing them as they are
# declined every image), and cropping inside the lit circle magnifies the lesion and cuts off
# its border, which cost another device's lesions most (docs/model-history.md). So the outside
# of the field is filled in from the field's own rim and the square is analysed whole. Pixels at
# or below this luminance that touch the image's edge count as outside the field...
FIELD_DARK_LEVEL = 32
# ...once at least this many of the four corners are mostly dark (a dark lesion touching one
# edge is not a field of view)...
FIELD_MIN_DARK_CORNERS = 2
# ...and at least this share of the image is lit (otherwise the image is simply too dark, which
# the gate says).
FIELD_MIN_LIT = 0.2
# The field's rim fades into the dark outside over a few pixels; they are filled in as well.
FIELD_RIM_PIXELS = 2
# The fill is painted at half the image's resolution (it carries no lesion detail, and a quarter
# of the pixels paint in a fraction of the time), drawing each pixel from this radius around it
# there (OpenCV's Telea inpainting).
FIELD_FILL_RADIUS = 3


def outside_of_field(rgb: np.ndarray) -> np.ndarray | None:
    """The pixels outside a round field of view, as a bool mask of `rgb`'s shape (H, W), or None
    if the image has no such field (fewer than FIELD_MIN_DARK_CORNERS dark corners, or next to
    nothing lit). A dark lesion inside the field is never taken for the outside: only dark pixels
    connected to the image's edge count. `prepare` calls it on the matched copy, so the field is
    found at the training copies' scale whatever the upload's resolution."""
    dark = (cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) <= FIELD_DARK_LEVEL).astype(np.uint8)
    rows, cols = dark.shape
    k = max(2, round(0.05 * min(rows, cols)))
    corners = [dark[:k, :k], dark[:k, -k:], dark[-k:, :k], dark[-k:, -k:]]
    if sum(corner.mean() > 0.5 for corner in corners) < FIELD_MIN_DARK_CORNERS:
        return None
    _, labels = cv2.connectedComponents(dark, connectivity=8)
    edge_labels = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    outside = np.isin(labels, edge_labels[edge_labels > 0])
    if np.count_nonzero(~outside) < FIELD_MIN_LIT * outside.size:
        return None
    rim = 2 * FIELD_RIM_PIXELS + 1
    return cv2.dilate(outside.astype(np.uint8), np.ones((rim, rim), np.uint8)).astype(bool)


def fill_outside_field(rgb: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """`rgb` with the `outside` pixels painted in from the lit field around them (a new array;
    the lit pixels are kept exactly)."""
    height, width = outside.shape
    half = (max(1, width // 2), max(1, height // 2))
    # Any half-size pixel that touches the outside is painted, so no dark pixel is painted from.
    unknown = cv2.resize(outside.astype(np.uint8) * 255, half, interpolation=cv2.INTER_AREA) > 0
    painted = cv2.inpaint(cv2.resize(rgb, half, interpolation=cv2.INTER_AREA), unknown.astype(np.uint8) * 255,
                          FIELD_FILL_RADIUS, cv2.INPAINT_TELEA)
    filled = rgb.copy()
    filled[outside] = cv2.resize(painted, (width, height), interpolation=cv2.INTER_LINEAR)[outside]
    return filled


def analysed_square(shape: tuple[int, ...], outside: np.ndarray | None = None) -> tuple[int, int, int]:
    """(top, left, side) of the square the network analyses in an image of `shape` (H, W, ...):
    a square of the shorter side, centred (lesions are centred by convention), or, given the
    `outside_of_field` mask, centred on the lit field as far as the image allows."""
    height, width = shape[:2]
    side = min(height, width)
    if outside is None:
        return (height - side) // 2, (width - side) // 2, side
    lit_rows, lit_cols = np.nonzero(~outside)
    centre_row = (lit_rows.min() + lit_rows.max() + 1) / 2
    centre_col = (lit_cols.min() + lit_cols.max() + 1) / 2
    top = min(max(0, round(centre_row - side / 2)), height - side)
    left = min(max(0, round(centre_col - side / 2)), width - side)
    return top, left, side


def match_training_copies(rgb: np.ndarray) -> np.ndarray:
    """An image whose shorter side exceeds TRAINING_SHORT_SIDE, made like a training copy:
    area-downscaled (aspect kept) to that shorter side, then encoded and decoded once as JPEG at
    TRAINING_JPEG_QUALITY. Anything no larger, the training copies included, is returned as is.

    Why: measured with a network trained on half-resolution copies, feeding it sharper images
    directly cost balanced accuracy and calibration, and matching both the resolution and the
    compression restored them; resolution alone did not.
    """
    height, width = rgb.shape[:2]
    if min(height, width) <= TRAINING_SHORT_SIDE:
        return rgb
    scale = TRAINING_SHORT_SIDE / min(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    buffer = io.BytesIO()
    Image.fromarray(small).save(buffer, "JPEG", quality=TRAINING_JPEG_QUALITY, subsampling="4:2:0")
    buffer.seek(0)
    return np.ascontiguousarray(np.asarray(Image.open(buffer).convert("RGB"), dtype=np.uint8))


@dataclass(frozen=True)
class PreparedImage:
    """Stage 2 of the pipeline: a decoded image made like the training copies (with the outside
    of a round field of view filled in), and the square of it that the network analyses.

    `pixels` is (H, W, 3) uint8; `square` is (top, left, side) in `pixels`' coordinates.
    """

    pixels: np.ndarray
    square: tuple[int, int, int]

    @property
    def region(self) -> np.ndarray:
        """The analysed square's pixels (a view into `pixels`)."""
        top, left, side = self.square
        return self.pixels[top:top + side, left:left + side]

    def resized_region(self, size: int) -> np.ndarray:
        """The analysed square resized to (size, size, 3) uint8, before any colour correction."""
        return _resized(self.region, size)

    def square_on(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        """The analysed square as (top, left, side) on another resolution of the same picture,
        of shape (H, W, ...): e.g. the decoded image the app stores and overlays."""
        height, width = shape[:2]
        rows, cols = self.pixels.shape[:2]
        top, left, side = self.square
        side = min(round(side * min(height / rows, width / cols)), height, width)
        top = min(max(0, round(top * height / rows)), height - side)
        left = min(max(0, round(left * width / cols)), width - side)
        return top, left, side


def prepare(rgb: np.ndarray) -> PreparedImage:
    """Stage 2: the decoded image matched to the training copies, the outside of a round field
    of view filled in, with its analysed square."""
    matched = match_training_copies(rgb)
    outside = outside_of_field(matched)
    if outside is None:
        return PreparedImage(matched, analysed_square(matched.shape))
    return PreparedImage(fill_outside_field(matched, outside), analysed_square(matched.shape, outside))


def _resized(square: np.ndarray, size: int) -> np.ndarray:
    interpolation = cv2.INTER_AREA if square.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)


# The colour range of the training copies: shades-of-grey illuminant estimates (`illuminant`) of
# the analysed squares of the 8,476 HAM10000 training-split images, as printed by
# `python -m tools.colour_range` (mean of log(R/G), log(B/G), log brightness; precision of the
# two chromaticities; standard deviation of the brightness).
ILLUMINANT_P = 6
TRAINING_ILLUMINANT_MEAN = (0.30007, 0.05136, 5.12741)
TRAINING_CHROMA_PRECISION = ((39.7125, 11.4937), (11.4937, 215.7758))
TRAINING_BRIGHTNESS_SD = 0.10691
# How far out (Mahalanobis distance of the chromaticity; standard deviations of the brightness) an
# image may lie before it is corrected. Measured on the validation split with the shipped weights:
# at 2 no unaltered figure moved, while 15% white-balance casts and underexposure regained part
# of what they cost (docs/model-history.md, version 1.2.1); at 1.5 unaltered images started to lose.
COLOUR_RANGE = 2.0
# A correction never exceeds this factor per channel: a cast far beyond it is not a rendering the
# network can be rescued from, and a truly dark or washed-out image must stay so for the gate.
MAX_COLOUR_GAIN = 1.5


def illuminant(rgb: np.ndarray) -> np.ndarray:
    """(log(R/G), log(B/G), log brightness) of the scene's light, by shades of grey.

    The Minkowski p-mean (p = ILLUMINANT_P) of each channel estimates the colour of the light.
    Pixels of a dark field edge never count. The chromaticity is read from the unsaturated pixels
    (a clipped channel has lost its colour); the brightness, the mean of the three p-means, from
    all lit pixels (blown-out skin is bright, not missing). A set with fewer than 100 pixels falls
    back to the whole image. Every second pixel of every second row is read: the estimate is a
    mean over the whole image, and this quarters its cost (2 ms -> 0.5 ms on a 150x150 square).
    Float64 array of shape (3,).
    """
    pixels = rgb[::2, ::2].reshape(-1, 3)
    lit = pixels.sum(axis=1, dtype=np.int32) > 3 * FIELD_DARK_LEVEL
    unsaturated = lit & (pixels.max(axis=1) < 250)
    powered = (pixels.astype(np.float32) / 255.0) ** ILLUMINANT_P

    def light(chosen: np.ndarray) -> np.ndarray:
        chosen_pixels = powered[chosen] if chosen.sum() >= 100 else powered
        return np.maximum(255.0 * np.mean(chosen_pixels, axis=0, dtype=np.float64) ** (1 / ILLUMINANT_P), 1.0)

    colour = light(unsaturated)
    return np.array([np.log(colour[0] / colour[1]), np.log(colour[2] / colour[1]), np.log(light(lit).mean())])


def colour_range_gains(rgb: np.ndarray) -> np.ndarray:
    """Per-channel (R, G, B) gains that move `rgb`'s illuminant to the nearest point of the
    training colour range: all ones inside it; otherwise the chromaticity is pulled back to the
    COLOUR_RANGE Mahalanobis ellipse (keeping brightness) and the brightness to COLOUR_RANGE
    standard deviations, each gain then clipped to [1 / MAX_COLOUR_GAIN, MAX_COLOUR_GAIN].
    """
    estimate = illuminant(rgb)
    mean = np.asarray(TRAINING_ILLUMINANT_MEAN)
    chroma = estimate[:2] - mean[:2]
    distance = float(np.sqrt(chroma @ np.asarray(TRAINING_CHROMA_PRECISION) @ chroma))
    excess_chroma = chroma * max(0.0, 1.0 - COLOUR_RANGE / distance) if distance > 0 else 0.0 * chroma
    log_gains = np.array([-excess_chroma[0], 0.0, -excess_chroma[1]])
    log_gains -= log_gains.mean()
    brightness = estimate[2] - mean[2]
    log_gains -= np.sign(brightness) * max(0.0, abs(brightness) - COLOUR_RANGE * TRAINING_BRIGHTNESS_SD)
    return np.exp(np.clip(log_gains, -np.log(MAX_COLOUR_GAIN), np.log(MAX_COLOUR_GAIN)))


def into_colour_range(rgb: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """`rgb` (uint8) with each channel multiplied by its gain; the very same array when all are 1."""
    if np.all(gains == 1.0):
        return rgb
    return np.clip(rgb.astype(np.float32) * gains.astype(np.float32), 0, 255).round().astype(np.uint8)


@dataclass(frozen=True)
class NetworkInput:
    """Stage 3 of the pipeline: what the network sees of one prepared image.

    `pixels`: (size, size, 3) uint8, the analysed square resized and brought into the training
    colour range; `gains`: the (R, G, B) gains that did it (all 1 when none were needed).
    """

    pixels: np.ndarray
    gains: np.ndarray

    @property
    def tensor(self) -> np.ndarray:
        """float32 (size, size, 3) in [-1, 1], the scale the network is trained on."""
        return normalise(self.pixels)


def network_input(prepared: PreparedImage, size: int) -> NetworkInput:
    """Stage 3: the prepared image's analysed square at `size`, brought into the training colour
    range with the gains of the whole square at its own resolution (so a square of any size from
    one image gets the same gains). The gate judges the image before this correction, as taken."""
    gains = colour_range_gains(prepared.region)
    return NetworkInput(into_colour_range(prepared.resized_region(size), gains), gains)


def normalise(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [-1, 1], the scale the network is trained on."""
    return pixels.astype(np.float32) / 127.5 - 1.0


def describe(size: int) -> str:
    """What this module does to an image and its metadata for a network of input `size`.

    Written into every model card at training time, beside `VERSION`, for a reader; the app
    compares the version, not this text.
    """
    return (f"decode (Pillow, EXIF-transposed, RGB, longer side <= {DISPLAY_MAX_SIDE}) -> if the "
            f"shorter side exceeds {TRAINING_SHORT_SIDE}: area downscale to it and one JPEG round trip at quality "
            f"{TRAINING_JPEG_QUALITY} (as the training copies were made) -> with >= "
            f"{FIELD_MIN_DARK_CORNERS} dark corners (luminance <= {FIELD_DARK_LEVEL}, edge-connected), "
            f"the outside of the round field of view and a {FIELD_RIM_PIXELS}-pixel rim inpainted (Telea, "
            f"radius {FIELD_FILL_RADIUS} at half resolution) -> the square of the shorter side, centred "
            f"on the field -> resize to {size}x{size} -> if the square's shades-of-grey illuminant (p={ILLUMINANT_P}) lies beyond "
            f"{COLOUR_RANGE} standard deviations of the training copies' (chromaticity mean "
            f"{TRAINING_ILLUMINANT_MEAN[:2]}, precision {TRAINING_CHROMA_PRECISION}; log brightness "
            f"{TRAINING_ILLUMINANT_MEAN[2]} sd {TRAINING_BRIGHTNESS_SD}): channel gains back to that edge, "
            f"at most x{MAX_COLOUR_GAIN} -> x/127.5-1; metadata: age/{MAX_AGE} + known flag, one-hot sex, "
            "one-hot HAM10000 localization (unknown = zeros)")


def encode_metadata(age: float | None = None, sex: str | None = None,
                    site: str | None = None) -> np.ndarray:
    """Patient metadata -> float32 vector of METADATA_SIZE; any field may be None (unknown).

    Layout: [age / MAX_AGE, age known], one-hot sex, one-hot body site. Unknown values are all
    zeros, which the network saw during training through metadata dropout.
    """
    vector = np.zeros(METADATA_SIZE, dtype=np.float32)
    if age is not None and not np.isnan(age):
        vector[0] = float(age) / MAX_AGE
        vector[1] = 1.0
    if sex in SEXES:
        vector[2 + SEXES.index(sex)] = 1.0
    if site in BODY_SITES:
        vector[2 + len(SEXES) + BODY_SITES.index(site)] = 1.0
    return vector
