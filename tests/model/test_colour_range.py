"""The training colour range: images inside it reach the network untouched; casts and exposure
beyond it are brought back to its edge, never by more than MAX_COLOUR_GAIN per channel."""

import ast

import numpy as np
import pytest
from PIL import Image

from dermalens import gate, preprocessing
from tools.colour_range import fit_colour_range
from tests.helpers import FIXTURES
from tests.images import lesion_array, with_gains

FIXTURE_IMAGES = sorted(FIXTURES.glob("ISIC_*.jpg"))
MEAN = np.asarray(preprocessing.TRAINING_ILLUMINANT_MEAN)
PRECISION = np.asarray(preprocessing.TRAINING_CHROMA_PRECISION)


def typical_lesion(size: int = 150) -> np.ndarray:
    """A lesion photographed under the training copies' average light (its illuminant is their mean)."""
    rgb = lesion_array(size, size)
    for _ in range(5):  # the estimate is not linear in the gains (clipping, excluded pixels)
        correction = MEAN - preprocessing.illuminant(rgb)
        rgb = with_gains(rgb, np.exp([correction[0], 0.0, correction[1]]) * np.exp(correction[2]))
    return rgb


def chroma_distance(rgb: np.ndarray) -> float:
    chroma = preprocessing.illuminant(rgb)[:2] - MEAN[:2]
    return float(np.sqrt(chroma @ PRECISION @ chroma))


def brightness_in_sd(rgb: np.ndarray) -> float:
    return float((preprocessing.illuminant(rgb)[2] - MEAN[2]) / preprocessing.TRAINING_BRIGHTNESS_SD)


def test_an_image_in_typical_light_is_left_exactly_as_it_is():
    rgb = typical_lesion()
    assert chroma_distance(rgb) < 0.1 and abs(brightness_in_sd(rgb)) < 0.1
    np.testing.assert_array_equal(preprocessing.colour_range_gains(rgb), np.ones(3))
    assert preprocessing.into_colour_range(rgb, np.ones(3)) is rgb


@pytest.mark.parametrize("fixture", FIXTURE_IMAGES, ids=lambda path: path.stem)
def test_training_copies_are_changed_by_a_few_percent_at_most(fixture):
    """Only the few per cent of training copies at the edges of the range are corrected at all."""
    rgb = np.asarray(Image.open(fixture).convert("RGB"))
    gains = preprocessing.colour_range_gains(preprocessing.prepare(rgb).region)
    np.testing.assert_allclose(gains, 1.0, atol=0.05)


@pytest.mark.parametrize("cast", [(1.25, 1.0, 0.75), (0.75, 1.0, 1.3), (0.85, 1.15, 0.85)],
                         ids=["warm", "cool", "green"])
def test_a_colour_cast_is_brought_back_to_the_edge_of_the_range(cast):
    # A little darker than typical (within the range), so no channel of the cast image clips.
    rgb = with_gains(typical_lesion(), np.multiply(cast, 0.85))
    assert rgb.max() < 250 and chroma_distance(rgb) > preprocessing.COLOUR_RANGE + 1
    corrected = preprocessing.into_colour_range(rgb, preprocessing.colour_range_gains(rgb))
    assert chroma_distance(corrected) == pytest.approx(preprocessing.COLOUR_RANGE, abs=0.15)
    # Gains keep their geometric mean; the brightness estimate moves by a few per cent at most.
    assert brightness_in_sd(corrected) == pytest.approx(brightness_in_sd(rgb), abs=0.4)


@pytest.mark.parametrize("exposure, edge", [(0.7, -1), (1.35, 1)], ids=["underexposed", "overexposed"])
def test_exposure_beyond_the_range_is_brought_back_to_its_edge(exposure, edge):
    rgb = with_gains(typical_lesion(), [exposure] * 3)
    corrected = preprocessing.into_colour_range(rgb, preprocessing.colour_range_gains(rgb))
    assert brightness_in_sd(corrected) == pytest.approx(edge * preprocessing.COLOUR_RANGE, abs=0.15)


def test_no_channel_is_ever_scaled_beyond_the_maximum_gain():
    """A truly dark or strongly tinted image is not rescued: it stays so for the gate to judge."""
    for rgb in (with_gains(typical_lesion(), [0.2] * 3), with_gains(typical_lesion(), [0.3, 1.0, 1.0]),
                np.full((150, 150, 3), (20, 200, 30), np.uint8)):
        gains = preprocessing.colour_range_gains(rgb)
        assert gains.max() <= preprocessing.MAX_COLOUR_GAIN * (1 + 1e-9)
        assert gains.min() >= 1 / preprocessing.MAX_COLOUR_GAIN * (1 - 1e-9)


def test_the_gate_judges_the_image_as_taken():
    dark = preprocessing.prepare(with_gains(typical_lesion(), [0.25] * 3))
    statistics = gate.image_statistics(dark)
    luminance = statistics[gate.STATISTIC_NAMES.index("luminance_mean")]
    assert luminance == pytest.approx(dark.resized_region(gate.STATISTICS_SIZE).mean(), rel=0.05)
    assert preprocessing.network_input(dark, 160).pixels.mean() > 1.4 * luminance


def test_squares_of_any_size_from_one_image_get_the_same_correction():
    """The trainer crops from a larger canvas than the network input; both are corrected alike."""
    prepared = preprocessing.prepare(with_gains(lesion_array(600, 450), (1.3, 1.0, 0.75)))
    small, large = (preprocessing.network_input(prepared, size).pixels for size in (160, 224))
    ratios = [square.reshape(-1, 3).astype(float).mean(axis=0) / prepared.resized_region(square.shape[0])
              .reshape(-1, 3).astype(float).mean(axis=0) for square in (small, large)]
    assert not np.allclose(ratios[0], 1.0, atol=0.02)
    np.testing.assert_allclose(ratios[0], ratios[1], atol=0.01)


def test_the_range_is_fitted_from_illuminant_estimates():
    rng = np.random.default_rng(0)
    covariance = np.array([[0.025, -0.002], [-0.002, 0.005]])
    chroma = rng.multivariate_normal([0.3, 0.05], covariance, 20_000)
    illuminants = np.column_stack([chroma, rng.normal(5.1, 0.1, 20_000)])
    fitted = fit_colour_range(illuminants)
    np.testing.assert_allclose(fitted["mean"], [0.3, 0.05, 5.1], atol=0.005)
    np.testing.assert_allclose(fitted["chroma_precision"], np.linalg.inv(covariance), rtol=0.05)
    assert fitted["brightness_sd"] == pytest.approx(0.1, rel=0.03)
    with pytest.raises(ValueError):
        fit_colour_range(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        fit_colour_range(np.zeros((10, 2)))


def test_every_model_card_records_the_colour_range():
    description = preprocessing.describe(160)
    assert f"beyond {preprocessing.COLOUR_RANGE} standard deviations" in description
    assert str(preprocessing.TRAINING_ILLUMINANT_MEAN[:2]) in description


def test_the_command_prints_the_constants_of_a_training_split(tmp_path, capsys):
    from tools import colour_range
    from tests.images import encode

    (tmp_path / "images").mkdir()
    lines = ["image_id,lesion_id,dx,split"]
    for index, gains in enumerate([(1.0, 1.0, 1.0), (1.1, 1.0, 0.9), (0.9, 1.0, 1.1), (1.0, 0.9, 1.0)]):
        (tmp_path / "images" / f"ISIC_{index}.jpg").write_bytes(
            encode(with_gains(lesion_array(200, 150, seed=index), gains), "JPEG", quality=90))
        lines.append(f"ISIC_{index},HAM_{index},nv,{'val' if index == 3 else 'train'}")
    (tmp_path / "split.csv").write_text("\n".join(lines) + "\n")

    assert colour_range.main(["--data", str(tmp_path), "--split", str(tmp_path / "split.csv")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# 3 training images\n")
    values = dict(line.split(" = ") for line in printed.splitlines()[1:])
    assert set(values) == {"TRAINING_ILLUMINANT_MEAN", "TRAINING_CHROMA_PRECISION", "TRAINING_BRIGHTNESS_SD"}
    precision = np.array(ast.literal_eval(values["TRAINING_CHROMA_PRECISION"]))
    assert precision.shape == (2, 2) and np.allclose(precision, precision.T)


def test_the_command_refuses_a_missing_split(tmp_path, capsys):
    from tools import colour_range

    with pytest.raises(SystemExit) as exit_info:
        colour_range.main(["--data", str(tmp_path), "--split", str(tmp_path / "missing.csv")])
    assert exit_info.value.code == 2 and "--split must be a file" in capsys.readouterr().err
