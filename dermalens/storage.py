"""Files of analyses: re-encoded images and heatmap overlays under generated names.

Only pixels the app decoded and re-encoded are ever written (no EXIF, no appended bytes), under
names made here; names from users are never used as paths.

The services reach the files through a `FileStore`. `LocalFolder` (DERMALENS_UPLOAD_FOLDER) is
the one shipped: several gunicorn workers share it as it is, and several hosts share it when it
is one volume mounted on all of them (NFS, a cloud file share). Another store (an object store,
say) implements the same methods.
"""

import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Protocol

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


def media_type(name: str) -> str:
    """Media type of a stored file, from the extension this module gave it."""
    return MEDIA_TYPES[stored_path(".", name).suffix[1:]]



class FileStore(Protocol):
    """Where the files of analyses are kept, under names the store makes.

    Writes are atomic (a reader never sees half a file) and durable before they return; a name
    that is not one the store made is refused (`StorageError`), never used as a path.
    """

    def write_new(self, data: bytes, extension: str) -> str:
        """Keep `data` under a new random name ending in `extension`; returns the name."""

    def read(self, name: str) -> bytes:
        """:raise FileGone: no such file (deleted meanwhile)."""

    def remove(self, *names: str) -> None:
        """Delete files; missing ones are fine."""

    def set_aside(self, *names: str) -> list:
        """First half of an all-or-nothing delete: hide the files (missing ones skipped); on
        failure nothing has changed and OSError is raised. Returns a handle for the other two."""

    def restore(self, moved: list) -> None:
        """Undo `set_aside`."""

    def purge(self, moved: list) -> None:
        """Finish the delete after `set_aside`."""

    def names(self) -> set[str]:
        """Every file name present (for the consistency check)."""

    def writable(self) -> tuple[bool, int | None]:
        """(a file can be written now, free megabytes or None): for the health check."""


class LocalFolder:
    """A `FileStore` in one folder of the local file system (or a volume shared by hosts)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def write_new(self, data: bytes, extension: str) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{secrets.token_urlsafe(18)}.{extension}"
        temporary = self.folder / f".{name}.part"
        try:
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.folder / name)
        finally:
            temporary.unlink(missing_ok=True)
        return name

    def read(self, name: str) -> bytes:
        try:
            return stored_path(self.folder, name).read_bytes()
        except FileNotFoundError:
            raise FileGone(name) from None

    def remove(self, *names: str) -> None:
        for name in filter(None, names):
            stored_path(self.folder, name).unlink(missing_ok=True)

    def set_aside(self, *names: str) -> list[tuple[Path, Path]]:
        moved: list[tuple[Path, Path]] = []
        try:
            for name in filter(None, names):
                original = stored_path(self.folder, name)
                aside = original.with_name(f".{name}.deleting")
                try:
                    os.replace(original, aside)
                except FileNotFoundError:
                    continue
                moved.append((aside, original))
        except OSError:
            self.restore(moved)
            raise
        return moved

    def restore(self, moved: list[tuple[Path, Path]]) -> None:
        for aside, original in moved:
            os.replace(aside, original)

    def purge(self, moved: list[tuple[Path, Path]]) -> None:
        for aside, _ in moved:
            aside.unlink(missing_ok=True)

    def names(self) -> set[str]:
        return {path.name for path in self.folder.iterdir() if path.is_file()} if self.folder.exists() else set()

    def writable(self) -> tuple[bool, int | None]:
        return writable(self.folder)
