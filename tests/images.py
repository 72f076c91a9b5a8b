"""Test images generated in memory: valid lesion-like pictures and many kinds of broken input."""

import io

import cv2
import numpy as np
from PIL import Image


def lesion_array(width: int = 320, height: int = 240, colour=(90, 50, 40), seed: int = 0) -> np.ndarray:
    """A skin-toned picture with a dark, slightly irregular blob in the middle."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    skin = np.empty((height, width, 3), np.float32)
    skin[:] = (220, 170, 150)
    radius = min(width, height) * (0.25 + 0.03 * np.sin(np.arctan2(y - height / 2, x - width / 2) * 5))
    inside = (x - width / 2) ** 2 + (y - height / 2) ** 2 < radius ** 2
    skin[inside] = colour
    skin += rng.normal(0, 6, skin.shape)
    return np.clip(skin, 0, 255).astype(np.uint8)


def in_round_field(rgb: np.ndarray, centre: tuple[int, int], radius: int) -> np.ndarray:
    """rgb seen through a dermoscope's round field of view: black outside the circle of `radius`
    pixels around `centre` (x, y)."""
    mask = np.zeros(rgb.shape[:2], np.uint8)
    cv2.circle(mask, centre, radius, 1, -1)
    return rgb * mask[..., None]


def encode(array: np.ndarray, fmt: str = "JPEG", **save_args) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **save_args)
    return buffer.getvalue()


def lesion_jpeg(width: int = 320, height: int = 240, **kwargs) -> bytes:
    return encode(lesion_array(width, height, **kwargs), "JPEG", quality=90)


def lesion_png(width: int = 320, height: int = 240, **kwargs) -> bytes:
    return encode(lesion_array(width, height, **kwargs), "PNG")


def pixel_flood_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG whose header claims a huge image (decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def benign_jpeg() -> bytes:
    """A bluish-brown lesion: FakeClassifier calls it a nevus (risk "monitor")."""
    return encode(lesion_array(colour=(60, 50, 150)), "JPEG", quality=90)


def malignant_jpeg() -> bytes:
    """A red lesion: FakeClassifier calls it a melanoma (risk "urgent")."""
    return encode(lesion_array(colour=(200, 30, 30)), "JPEG", quality=90)


def with_gains(rgb: np.ndarray, gains) -> np.ndarray:
    """`rgb` with its red, green and blue channels multiplied by `gains` (a colour cast)."""
    return np.clip(rgb.astype(np.float64) * np.asarray(gains), 0, 255).round().astype(np.uint8)


def progressive_jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", progressive=True, quality=90)
    return buffer.getvalue()


def scan_bomb(array: np.ndarray, repeats: int) -> bytes:
    """A progressive JPEG whose last scan is repeated: valid, small, and slow to decode."""
    data = progressive_jpeg(array)
    last_scan = data.rindex(b"\xff\xda")
    return data[:last_scan] + data[last_scan:-2] * repeats + b"\xff\xd9"
