"""Storage consistency: find analyses without files and files without analyses.

Analyses write files before the row; a deletion sets the files aside (hidden `.deleting` names),
commits, then removes them. So a crash leaves at worst orphan files (never a row pointing at
nothing); `flask --app app doctor --fix` removes them.
"""

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from dermalens.records import Analysis
from dermalens.storage import FileStore, LocalFolder


@dataclass
class StorageReport:
    analyses: int = 0
    files: int = 0
    orphan_files: list[str] = field(default_factory=list)
    records_missing_files: list[str] = field(default_factory=list)


def check_storage(session: Session, files: FileStore) -> StorageReport:
    on_disk = files.names()
    report = StorageReport(files=len(on_disk))
    referenced = set()
    for public_id, image_file, heatmap_file in session.execute(
            select(Analysis.public_id, Analysis.image_file, Analysis.heatmap_file)):
        report.analyses += 1
        referenced |= {image_file, heatmap_file}
        if image_file not in on_disk or heatmap_file not in on_disk:
            report.records_missing_files.append(public_id)
    # Temporary ".part" files of interrupted writes are orphans too.
    report.orphan_files = sorted(on_disk - referenced)
    return report


def remove_orphans(files: LocalFolder, names: list[str]) -> None:
    """Delete the named files (names as listed by check_storage: plain names inside the folder,
    temporary and set-aside ones included, which the store's own `remove` refuses)."""
    for name in names:
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"not a file name: {name!r}")
        (files.folder / name).unlink(missing_ok=True)
