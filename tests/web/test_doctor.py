"""Storage consistency: crashes leave no row without files, and `doctor` finds and cleans orphans."""

from pathlib import Path

import pytest

from dermalens import analysis_service, storage
from tests.helpers import row_count, stored_files
from tests.images import benign_jpeg


def test_doctor_reports_and_removes_orphan_files(app, runner, logged_in, analysis_id):
    folder = Path(app.config["UPLOAD_FOLDER"])
    (folder / "orphan_file_from_a_crash_00.jpg").write_bytes(b"x")
    (folder / ".interrupted_write_000000000.png.part").write_bytes(b"x")
    result = runner.invoke(args=["doctor"])
    assert result.exit_code == 1 and "2 orphan files" in result.output
    fixed = runner.invoke(args=["doctor", "--fix"])
    assert fixed.exit_code == 0 and "removed 2 orphan files" in fixed.output
    assert len(stored_files(app)) == 2 and row_count(app) == 1
    assert runner.invoke(args=["doctor"]).exit_code == 0


def test_doctor_reports_records_missing_files(app, runner, analysis_id):
    for name in stored_files(app):
        (Path(app.config["UPLOAD_FOLDER"]) / name).unlink()
    result = runner.invoke(args=["doctor"])
    assert result.exit_code == 1 and analysis_id in result.output


def test_a_failed_commit_removes_the_files_it_wrote(app, logged_in, monkeypatch):
    from dermalens.extensions import db

    def broken_commit():
        raise RuntimeError("disk full")

    with app.app_context():
        monkeypatch.setattr(db.session, "commit", broken_commit)
        request = analysis_service.AnalysisRequest(image=benign_jpeg())
        with pytest.raises(RuntimeError):
            analysis_service.create_analysis(db.session, app.extensions["classifier"],
                                             app.extensions["files"], 1, request)
    assert stored_files(app) == [] and row_count(app) == 0


def test_stored_names_are_generated_and_checked():
    with pytest.raises(storage.StorageError):
        storage.stored_path("/tmp", "../../etc/passwd")
    with pytest.raises(storage.StorageError):
        storage.stored_path("/tmp", "a%00.php.jpg")
