"""The cross-validation folds, the device-style views and the teacher's metadata encoding."""

import cv2
import numpy as np
import pytest

from dermalens import preprocessing
from dermalens.lesions import CLASSES
from dermalens.training import device_views, folds, teacher
from tests.images import lesion_array


def ham_rows(lesions_per_class=12, images_per_lesion=(1, 2, 3)):
    rows = []
    for dx in CLASSES:
        for lesion in range(lesions_per_class):
            for image in range(images_per_lesion[lesion % len(images_per_lesion)]):
                rows.append({"image_id": f"ISIC_{dx}_{lesion}_{image}", "lesion_id": f"HAM_{dx}_{lesion}",
                             "dx": dx, "age": None, "sex": None, "site": None})
    return rows


def test_folds_keep_every_lesion_in_one_fold_and_every_class_in_every_fold():
    rows = ham_rows()
    assigned = folds.assign_folds(rows, 5, seed=1)
    by_lesion = {}
    for row in rows:
        by_lesion.setdefault(row["lesion_id"], set()).add(assigned[row["image_id"]])
    assert all(len(fold) == 1 for fold in by_lesion.values())
    for dx in CLASSES:
        assert {assigned[row["image_id"]] for row in rows if row["dx"] == dx} == set(range(5))
    sizes = np.bincount(list(assigned.values()))
    assert sizes.max() - sizes.min() <= 6


def test_folds_are_stable_and_round_trip_through_their_file(tmp_path):
    rows = ham_rows()
    assigned = folds.assign_folds(rows)
    assert folds.assign_folds(list(reversed(rows))) == assigned  # order of the file does not matter
    assert folds.assign_folds(rows, seed=folds.SEED + 1) != assigned
    folds.write_folds(tmp_path / "folds.csv", rows, assigned)
    assert folds.read_folds(tmp_path / "folds.csv") == assigned
    split = folds.split_for_fold(assigned, 2)
    assert {image_id for image_id, side in split.items() if side == "val"} == {
        image_id for image_id, fold in assigned.items() if fold == 2}


def test_a_view_is_the_same_every_time_and_differs_between_views():
    rgb = lesion_array(200, 150)
    first = device_views.render_view(rgb, "ISIC_1", 3)
    assert first.shape == (device_views.VIEW_SIZE, device_views.VIEW_SIZE, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(device_views.render_view(rgb, "ISIC_1", 3), first)
    assert not np.array_equal(device_views.render_view(rgb, "ISIC_1", 4), first)
    assert not np.array_equal(device_views.render_view(rgb, "ISIC_2", 3), first)


def test_view_zero_is_the_image_itself():
    """The centre square, only resized: the analysed square of a training copy."""
    rgb = lesion_array(200, 150)
    prepared = preprocessing.prepare(rgb)
    assert prepared.square == (0, 25, 150)
    view = device_views.render_view(rgb, "ISIC_1", 0)
    np.testing.assert_array_equal(view, cv2.resize(prepared.region, view.shape[:2], interpolation=cv2.INTER_AREA))


def test_views_change_magnification_and_colour_within_bounds():
    rgb = lesion_array(200, 150)
    rendered = np.stack([device_views.render_view(rgb, "ISIC_1", index) for index in range(1, 41)])
    means = rendered.reshape(len(rendered), -1, 3).mean(axis=1)
    assert np.ptp(means[:, 0] - means[:, 2]) > 10  # white balance varies
    assert 40 < means.mean() < 220  # never blank or black


@pytest.mark.parametrize("age, sex, site, expected", [
    (None, None, None, {2: 1, 7: 1, 8: teacher.AGE_MEAN / 90, 9: 1}),
    (45, "female", "back", {0: 1, 6: 1, 8: 0.5}),
    (90, "male", "face", {1: 1, 4: 1, 8: 1.0}),
    (30, None, "acral", {2: 1, 7: 1, 8: 30 / 90}),
])
def test_the_teacher_metadata_follows_sklesions_encoding(age, sex, site, expected):
    vector = teacher.teacher_metadata(age, sex, site)
    wanted = np.zeros(10, np.float32)
    for index, value in expected.items():
        wanted[index] = value
    np.testing.assert_allclose(vector, wanted, rtol=1e-6)


def test_a_teacher_cache_of_another_recipe_is_refused(tmp_path):
    path = tmp_path / "cache.npz"
    teacher.write_cache(path, ["ISIC_1"], np.full((1, 2, 7), 1 / 7))
    assert teacher.read_cache(path, 2)["image_ids"] == ["ISIC_1"]
    with pytest.raises(SystemExit, match="views"):
        teacher.read_cache(path, 3)


def test_a_teacher_cache_read_without_a_view_count_keeps_all_its_views(tmp_path):
    path = tmp_path / "cache.npz"
    teacher.write_cache(path, ["ISIC_1", "ISIC_2"], np.full((2, 5, 7), 1 / 7))
    assert teacher.read_cache(path)["probabilities"].shape == (2, 5, 7)


class ViewTeacher:
    """A stand-in teacher whose output names the view it saw: its mean pixel, spread over 7."""

    def __init__(self):
        self.views_seen = 0

    def predict_on_batch(self, inputs):
        images, _ = inputs
        self.views_seen += len(images)
        means = images.reshape(len(images), -1).mean(axis=1) / 255.0
        return np.stack([np.full(7, 1 / 7) + (np.arange(7) - 3) * mean / 100 for mean in means])


def test_a_cache_of_more_views_grows_from_one_of_fewer_with_only_the_missing_views_computed(tmp_path, monkeypatch):
    from tests.training.tiny import make_dataset

    rows = make_dataset(tmp_path / "data", per_class=1)
    fake = ViewTeacher()
    monkeypatch.setattr(teacher, "load_teacher", lambda: fake)
    base = ["--data", str(tmp_path / "data")]
    assert teacher.main([*base, "--out", str(tmp_path / "full.npz"), "--views", "3"]) == 0
    assert teacher.main([*base, "--out", str(tmp_path / "two.npz"), "--views", "2"]) == 0
    fake.views_seen = 0

    assert teacher.main([*base, "--out", str(tmp_path / "grown.npz"), "--views", "3",
                         "--extend", str(tmp_path / "two.npz")]) == 0

    assert fake.views_seen == len(rows)  # only view 2 of each image
    grown, full = teacher.read_cache(tmp_path / "grown.npz", 3), teacher.read_cache(tmp_path / "full.npz", 3)
    assert grown["image_ids"] == full["image_ids"]
    np.testing.assert_array_equal(grown["probabilities"], full["probabilities"])


def test_extending_a_cache_needs_one_of_fewer_views(tmp_path):
    teacher.write_cache(tmp_path / "four.npz", ["ISIC_1"], np.full((1, 4, 7), 1 / 7))
    with pytest.raises(SystemExit, match="fewer than --views 4"):
        teacher.main(["--data", str(tmp_path), "--out", str(tmp_path / "out.npz"), "--views", "4",
                      "--extend", str(tmp_path / "four.npz")])
    assert not (tmp_path / "out.npz").exists()


@pytest.mark.parametrize("views", [4, 8])
def test_each_committed_teacher_cache_covers_every_image_with_todays_view_recipe(views):
    import csv
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    with open(root / "models" / "dermalens-folds.csv", newline="") as handle:
        image_ids = {row["image_id"] for row in csv.DictReader(handle)}
    cache = teacher.read_cache(root / "models" / "teacher" / f"sklesion-views-{views}.npz", views)
    assert sorted(cache["image_ids"]) == sorted(image_ids) and len(image_ids) == 10_015
    probabilities = np.asarray(cache["probabilities"], np.float64)
    assert probabilities.shape == (10_015, views, 7)
    assert np.allclose(probabilities.sum(axis=-1), 1, atol=0.01) and (probabilities >= 0).all()


def test_the_8_view_cache_holds_the_4_view_cache_as_its_first_views():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "models" / "teacher"
    four, eight = teacher.read_cache(folder / "sklesion-views-4.npz", 4), teacher.read_cache(folder / "sklesion-views-8.npz", 8)
    assert four["image_ids"] == eight["image_ids"]
    np.testing.assert_array_equal(four["probabilities"], eight["probabilities"][:, :4])
