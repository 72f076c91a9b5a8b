"""Knowledge distillation targets: how a teacher's probabilities enter the training targets."""

import numpy as np
import pytest

from dermalens.train import read_teacher, training_targets


def test_without_a_teacher_targets_are_one_hot():
    targets = training_targets(np.array([0, 4, 6]), None, 0.5)
    assert targets.tolist() == np.eye(7)[[0, 4, 6]].tolist()


def test_teacher_probabilities_are_mixed_in_by_the_teacher_weight():
    teacher = np.full((2, 7), 1 / 7, np.float32)
    targets = training_targets(np.array([1, 5]), teacher, 0.3)
    assert targets[0, 1] == pytest.approx(0.7 + 0.3 / 7)
    assert targets[0, 0] == pytest.approx(0.3 / 7)
    assert targets.sum(axis=1) == pytest.approx([1.0, 1.0])


def test_teacher_file_is_read_in_the_order_asked(tmp_path):
    path = tmp_path / "teacher.npz"
    probabilities = np.eye(7, dtype=np.float32)[:3]
    np.savez(path, image_ids=np.array(["ISIC_a", "ISIC_b", "ISIC_c"]), probabilities=probabilities)
    assert read_teacher(path, ["ISIC_c", "ISIC_a"]).tolist() == probabilities[[2, 0]].tolist()


def test_a_teacher_file_missing_training_images_is_refused(tmp_path):
    path = tmp_path / "teacher.npz"
    np.savez(path, image_ids=np.array(["ISIC_a"]), probabilities=np.eye(7, dtype=np.float32)[:1])
    with pytest.raises(SystemExit, match="no teacher probabilities for 1 images, e.g. ISIC_b"):
        read_teacher(path, ["ISIC_a", "ISIC_b"])


@pytest.mark.parametrize("weight", ["-0.1", "1.5"])
def test_a_teacher_weight_outside_zero_to_one_is_refused(weight):
    from dermalens.train import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--data", "d", "--out", "o", "--teacher", "t.npz", "--teacher-weight", weight])
