"""Files of analyses: re-encoded images and heatmap overlays under generated names.

Only pixels the app decoded and re-encoded are ever written (no EXIF, no appended bytes), under
names made here, inside the upload folder; names from users are never used as paths.
"""

import os
import re
import secrets
import shutil
from pathlib import Path

import cv2
import numpy as np

JPEG_QUALITY = 92
# Extensions of stored files and their media types. New files are JPEG; PNG heatmaps were
# written by earlier versions and are still served, as PNG.
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png"}
_STORED_NAME = re.compile(rf"^[A-Za-z0-9_-]{{20,40}}\.({'|'.join(MEDIA_TYPES)})$")


class StorageError(RuntimeError):
    pass


class FileGone(LookupError):
    """A stored file is no longer there (its analysis was deleted while it was being read)."""


def encode_jpeg(rgb: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                              [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise StorageError("could not encode JPEG")
    return buffer.tobytes()


def write_new_file(folder: str | Path, data: bytes, extension: str) -> str:
    """Write bytes under a new random name, atomically (temp file + rename); return the name."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_urlsafe(18)}.{extension}"
    temporary = folder / f".{name}.part"
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, folder / name)
    finally:
        temporary.unlink(missing_ok=True)
    return name


def writable(folder: str | Path, probe_bytes: int = 65536) -> tuple[bool, int | None]:
    """(can a file be written, synced and removed in `folder`, free megabytes there): what a
    health check needs to know of a full or read-only disk. Leaves nothing behind."""
    folder = Path(folder)
    probe = folder / f".health-probe-{secrets.token_hex(8)}"
    try:
        free_mb = shutil.disk_usage(folder).free // (1024 * 1024)
        with open(probe, "wb") as handle:
            handle.write(b"\0" * probe_bytes)
            handle.flush()
            os.fsync(handle.fileno())
        return True, free_mb
    except OSError:
        return False, None
    finally:
        probe.unlink(missing_ok=True)


def stored_path(folder: str | Path, name: str) -> Path:
    """Path of a stored file; refuses anything that is not a name this module generated."""
    if not _STORED_NAME.match(name or ""):
        raise StorageError(f"not a stored file name: {name!r}")
    return Path(folder) / name


def read_file(folder: str | Path, name: str) -> bytes:
    """The bytes of a stored file. :raise FileGone: it was deleted meanwhile."""
    try:
        return stored_path(folder, name).read_bytes()
    except FileNotFoundError:
        raise FileGone(name) from None


def media_type(name: str) -> str:
    """Media type of a stored file, from the extension this module gave it."""
    return MEDIA_TYPES[stored_path(".", name).suffix[1:]]


def remove_files(folder: str | Path, *names: str) -> None:
    """Delete stored files; missing files are fine (deletion is idempotent)."""
    for name in names:
        if name:
            stored_path(folder, name).unlink(missing_ok=True)


def set_aside(folder: str | Path, *names: str) -> list[tuple[Path, Path]]:
    """Rename stored files to hidden names, the first half of an all-or-nothing delete.

    Returns (set-aside path, original path) pairs for `restore` or `purge`. If any rename fails
    (an unwritable folder), those already renamed are put back and the OSError is raised: then
    nothing has changed. Missing files are skipped.
    """
    moved: list[tuple[Path, Path]] = []
    try:
        for name in filter(None, names):
            original = stored_path(folder, name)
            aside = original.with_name(f".{name}.deleting")
            try:
                os.replace(original, aside)
            except FileNotFoundError:
                continue
            moved.append((aside, original))
    except OSError:
        restore(moved)
        raise
    return moved


def restore(moved: list[tuple[Path, Path]]) -> None:
    """Undo `set_aside` (the delete did not happen)."""
    for aside, original in moved:
        os.replace(aside, original)


def purge(moved: list[tuple[Path, Path]]) -> None:
    """Finish a delete after `set_aside`: the hidden files go for good."""
    for aside, _ in moved:
        aside.unlink(missing_ok=True)
