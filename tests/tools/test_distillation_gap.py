"""How closely a distilled network matches its teacher on the cached views it learnt and on unseen ones."""

from types import SimpleNamespace

import numpy as np
import pytest

from dermalens.training import data, teacher
from tests.training.tiny import make_dataset
from tools import distillation_gap


def test_divergence_is_worked_out_per_view_group():
    taught = np.array([[[0.5, 0.5], [1.0, 0.0]]])              # one image, two views
    network = np.array([[[0.5, 0.5], [0.25, 0.75]]])
    result = distillation_gap.divergence(taught, network)
    assert result["view 0"] == {"kl": pytest.approx(0.0, abs=1e-9), "agreement": 1.0}
    assert result["other views"]["kl"] == pytest.approx(np.log(4), rel=1e-4)  # log(1 / 0.25)
    assert result["other views"]["agreement"] == 0.0


class UniformNetwork:
    """A stand-in classifier that answers every input with equal probabilities."""

    info = SimpleNamespace(card={"name": "tiny", "input_size": 32})

    def __init__(self):
        self.images_seen = 0

    def probabilities(self, images, metadata):
        assert images.shape[1:] == (32, 32, 3) and images.min() >= -1 and len(metadata) == len(images)
        self.images_seen += len(images)
        return np.full((len(images), 7), 1 / 7)


def test_both_sides_of_the_split_are_measured_on_every_cached_view(tmp_path, monkeypatch, capsys):
    rows = make_dataset(tmp_path / "data", per_class=2)
    split = {row[1]: "val" if int(row[1][-1]) == 0 else "train" for row in rows}
    data.write_split(tmp_path / "tiny.split.csv", data.read_ham10000(tmp_path / "data"), split)
    taught = np.zeros((len(rows), 3, 7))
    taught[:, 0, 0] = 1.0           # view 0: akiec, which a uniform answer names too
    taught[:, 1:, 3] = 1.0          # the other views: df
    teacher.write_cache(tmp_path / "views.npz", [row[1] for row in rows], taught)
    network = UniformNetwork()
    monkeypatch.setattr(distillation_gap, "load_classifier", lambda path: network)

    assert distillation_gap.main(["--model-card", str(tmp_path / "tiny.json"), "--teacher-views",
                                  str(tmp_path / "views.npz"), "--data", str(tmp_path / "data")]) == 0

    assert network.images_seen == len(rows) * 3
    printed = capsys.readouterr().out.splitlines()
    kl = f"KL {np.log(7):.3f}"
    assert printed == [f"train (7 images, 3 views): view 0: {kl}, agreement 1.000; other views: {kl}, agreement 0.000",
                       f"val (7 images, 3 views): view 0: {kl}, agreement 1.000; other views: {kl}, agreement 0.000"]


def test_a_card_with_no_cached_validation_images_is_an_error(tmp_path, monkeypatch, capsys):
    rows = make_dataset(tmp_path / "data", per_class=1)
    data.write_split(tmp_path / "tiny.split.csv", data.read_ham10000(tmp_path / "data"),
                     {row[1]: "train" for row in rows})
    teacher.write_cache(tmp_path / "views.npz", [row[1] for row in rows], np.full((len(rows), 2, 7), 1 / 7))
    monkeypatch.setattr(distillation_gap, "load_classifier", lambda path: UniformNetwork())
    assert distillation_gap.main(["--model-card", str(tmp_path / "tiny.json"), "--teacher-views",
                                  str(tmp_path / "views.npz"), "--data", str(tmp_path / "data")]) == 2
    assert "no val images" in capsys.readouterr().err
