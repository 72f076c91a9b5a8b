"""The teacher's own figures on a labelled folder, on the square the app serves and at full resolution."""

import csv
import json

import numpy as np

from dermalens.lesions import CLASSES
from dermalens.training import teacher
from tests.images import encode, lesion_array
from tools import teacher_anchor


class ColourTeacher:
    """A stand-in teacher that calls a lesion melanoma when its centre is redder than blue and a
    nevus otherwise, and records the sizes and metadata it was given."""

    def __init__(self):
        self.inputs = []

    def predict_on_batch(self, inputs):
        images, metadata = inputs
        self.inputs.append((images.shape, metadata.copy()))
        middle = images.shape[1] // 2
        centre = images[:, middle - 8:middle + 8, middle - 8:middle + 8].mean(axis=(1, 2))
        reddish = centre[:, 0] > centre[:, 2]
        return np.eye(len(CLASSES))[np.where(reddish, CLASSES.index("mel"), CLASSES.index("nv"))]


def write_folder(tmp_path):
    (tmp_path / "images").mkdir()
    rows = [("red", "mel", (180, 60, 50)), ("blue", "nv", (60, 60, 180)), ("red2", "nv", (190, 70, 60))]
    for image_id, _, colour in rows:
        array = lesion_array(600, 450, colour=colour, seed=len(image_id))
        (tmp_path / "images" / f"{image_id}.jpg").write_bytes(encode(array, "JPEG", quality=90))
    (tmp_path / "images" / "broken.jpg").write_bytes(b"not an image")
    with open(tmp_path / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "dx", "age", "sex", "localization"])
        writer.writerows([(image_id, dx, "50", "female", "back") for image_id, dx, _ in rows])
        writer.writerow(["broken", "mel", "", "", ""])


def test_the_teacher_is_measured_on_both_inputs_and_unreadable_images_are_skipped(tmp_path, monkeypatch, capsys):
    write_folder(tmp_path)
    fake = ColourTeacher()
    monkeypatch.setattr(teacher, "load_teacher", lambda: fake)

    assert teacher_anchor.main(["--images", str(tmp_path / "images"), "--labels", str(tmp_path / "labels.csv"),
                                "--out", str(tmp_path / "anchor.json")]) == 0

    result = json.loads((tmp_path / "anchor.json").read_text())
    assert list(result["skipped"]) == ["broken"]
    for name in ("served", "full"):
        # red: melanoma, called melanoma; blue: nevus, called nevus; red2: nevus, called melanoma
        assert result[name]["n"] == 3
        assert result[name]["recall"]["mel"] == 1.0 and result[name]["recall"]["nv"] == 0.5
        assert result[name]["balanced_accuracy"] == 0.75
    size = teacher.TEACHER_SIZE
    assert all(shape == (2, size, size, 3) for shape, _ in fake.inputs)
    np.testing.assert_array_equal(fake.inputs[0][1][0], teacher.teacher_metadata(50, "female", "back"))
    assert "served: n 3, balanced accuracy 0.750" in capsys.readouterr().out


def test_a_folder_with_no_readable_image_is_an_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels.csv").write_text("image_id,dx\nmissing,mel\n")
    monkeypatch.setattr(teacher, "load_teacher", ColourTeacher)
    assert teacher_anchor.main(["--images", str(tmp_path / "images"), "--labels", str(tmp_path / "labels.csv")]) == 2
    assert "none of the labelled images" in capsys.readouterr().err
