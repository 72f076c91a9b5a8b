"""Re-cropped copies for robustness evaluation: centred, the asked size, one per labelled image."""

import numpy as np
import pytest

from tools.recrop import main, recolour, recrop, round_field
from tests.images import encode, lesion_array


def test_recrop_keeps_the_centre_and_resizes():
    bgr = np.zeros((150, 200, 3), np.uint8)
    bgr[60:90, 80:120] = 255  # a bright centre
    out = recrop(bgr, keep=0.5, aspect=None, size=(400, 300))
    assert out.shape == (300, 400, 3)
    assert out[150, 200].min() == 255 and out[5, 5].max() == 0


def test_recrop_cuts_the_asked_aspect_ratio():
    bgr = np.zeros((150, 200, 3), np.uint8)
    bgr[:, :25] = 255  # a bright left margin that a centred square leaves out
    out = recrop(bgr, keep=1.0, aspect=1.0, size=(64, 64))
    assert out.shape == (64, 64, 3) and out.max() == 0


def test_recolour_shifts_white_balance_and_exposure():
    bgr = np.full((10, 10, 3), (100, 100, 100), np.uint8)
    np.testing.assert_array_equal(recolour(bgr)[0, 0], (100, 100, 100))
    np.testing.assert_array_equal(recolour(bgr, gains=(1.2, 1.0, 0.5))[0, 0], (50, 100, 120))  # BGR
    assert recolour(bgr, gamma=1.3)[0, 0, 0] == round(255 * (100 / 255) ** 1.3)
    assert recolour(bgr, gains=(3.0, 1.0, 1.0))[0, 0, 2] == 255


def test_round_field_blacks_out_all_but_the_centred_circle():
    bgr = np.full((90, 120, 3), 200, np.uint8)
    out = round_field(bgr, 1.0)
    assert out[45, 60].tolist() == [200, 200, 200]  # centre lit
    assert out[0, 0].max() == 0 and out[89, 119].max() == 0 and out[45, 10].max() == 0  # outside black
    assert out[45, 16].tolist() == [200, 200, 200]  # just inside the 90-pixel circle
    assert round_field(bgr, None) is bgr


@pytest.mark.parametrize("option", [["--gains", "1,1"], ["--gains", "1,0,1"], ["--gains", "a,b,c"],
                                    ["--gains", "nan,1,1"], ["--gains", "inf,1,1"], ["--gamma", "0"],
                                    ["--gamma", "nan"]])
def test_recrop_refuses_bad_colour_options(tmp_path, option):
    (tmp_path / "labels.csv").write_text("image_id,dx\nISIC_1,nv\n")
    with pytest.raises(SystemExit):
        main(["--images", str(tmp_path), "--labels", str(tmp_path / "labels.csv"),
              "--out", str(tmp_path / "out"), "--size", "64x64", *option])
    assert not (tmp_path / "out").exists()


def test_recrop_command_writes_one_jpeg_per_labelled_image(tmp_path):
    (tmp_path / "in").mkdir()
    for image_id, fmt, suffix in (("ISIC_1", "JPEG", ".jpg"), ("ISIC_2", "PNG", ".png")):
        (tmp_path / "in" / f"{image_id}{suffix}").write_bytes(encode(lesion_array(200, 150), fmt))
    (tmp_path / "labels.csv").write_text("image_id,dx\nISIC_1,nv\nISIC_2,mel\n")
    assert main(["--images", str(tmp_path / "in"), "--labels", str(tmp_path / "labels.csv"),
                 "--out", str(tmp_path / "out"), "--keep", "0.7", "--size", "600x450"]) == 0
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["ISIC_1.jpg", "ISIC_2.jpg"]


def test_recrop_names_a_labelled_image_that_is_missing(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "labels.csv").write_text("image_id,dx\nISIC_9,nv\n")
    with pytest.raises(SystemExit, match="no image ISIC_9.jpg or .png"):
        main(["--images", str(tmp_path / "in"), "--labels", str(tmp_path / "labels.csv"),
              "--out", str(tmp_path / "out"), "--size", "64x64"])


def test_an_undecodable_image_leaves_no_copies_behind(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "ISIC_1.jpg").write_bytes(encode(lesion_array(200, 150), "JPEG"))
    (tmp_path / "in" / "ISIC_2.jpg").write_bytes(b"not an image")
    (tmp_path / "labels.csv").write_text("image_id,dx\nISIC_1,nv\nISIC_2,mel\n")
    with pytest.raises(SystemExit, match="cannot decode .*ISIC_2.jpg; no copies written"):
        main(["--images", str(tmp_path / "in"), "--labels", str(tmp_path / "labels.csv"),
              "--out", str(tmp_path / "out"), "--size", "64x64"])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", [["--size", "600by450"], ["--size", "0x450"], ["--size", "64x64x3"],
                                    ["--size", "64x64", "--aspect", "1:0"],
                                    ["--size", "64x64", "--aspect", "square"],
                                    ["--size", "64x64", "--keep", "0"], ["--size", "64x64", "--keep", "1.5"],
                                    ["--size", "64x64", "--round-field", "0"],
                                    ["--size", "64x64", "--round-field", "nan"]])
def test_malformed_options_are_refused_before_anything_is_written(tmp_path, option):
    (tmp_path / "labels.csv").write_text("image_id,dx\nISIC_1,nv\n")
    with pytest.raises(SystemExit) as refused:
        main(["--images", str(tmp_path), "--labels", str(tmp_path / "labels.csv"),
              "--out", str(tmp_path / "out"), *option])
    assert refused.value.code == 2 and not (tmp_path / "out").exists()
