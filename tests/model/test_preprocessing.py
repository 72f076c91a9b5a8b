"""Shared preprocessing: decoding untrusted bytes, normalising modes, and train/serve parity."""

import io

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from dermalens import preprocessing
from dermalens.lesions import BODY_SITES
from dermalens.preprocessing import InvalidImage
from tests.images import encode, in_round_field, lesion_array, pixel_flood_png


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK", "I;16", "1"])
def test_every_mode_becomes_8bit_rgb(mode):
    image = Image.fromarray(lesion_array(64, 48)).convert(mode if mode != "I;16" else "L")
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image, np.uint16) * 257)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    rgb = preprocessing.decode_image(buffer.getvalue())
    assert rgb.dtype == np.uint8 and rgb.shape == (48, 64, 3)


def test_sixteen_bit_is_scaled_not_clipped():
    wide = np.full((40, 40), 65535, np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(wide).save(buffer, format="PNG")
    assert preprocessing.decode_image(buffer.getvalue()).min() == 255


def test_exif_orientation_is_applied():
    image = Image.fromarray(lesion_array(80, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    assert preprocessing.decode_image(buffer.getvalue()).shape == (80, 40, 3)


def test_animated_png_uses_first_frame():
    frames = [Image.fromarray(lesion_array(40, 40, colour=c)) for c in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="PNG", save_all=True, append_images=frames[1:])
    rgb = preprocessing.decode_image(buffer.getvalue())
    assert rgb[20, 20, 0] > rgb[20, 20, 2]


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"GIF89a...", "not a JPEG or PNG"),
    (pixel_flood_png(), "too many pixels"),
    (encode(lesion_array(20, 20), "PNG"), "too small"),
    (encode(lesion_array(), "JPEG")[:300], "damaged"),
])
def test_invalid_images_are_refused_with_a_reason(data, message):
    with pytest.raises(InvalidImage, match=message):
        preprocessing.decode_image(data)


def test_pixel_flood_is_refused_before_decoding():
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(InvalidImage):
        preprocessing.decode_image(pixel_flood_png(60_000, 60_000))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_either_decode_or_raise_invalid_image(data):
    try:
        rgb = preprocessing.decode_image(data)
    except InvalidImage:
        return
    assert rgb.ndim == 3 and rgb.shape[2] == 3


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=512), st.integers(0, 2000))
def test_corrupting_a_valid_jpeg_never_escapes_invalid_image(garbage, position):
    data = bytearray(encode(lesion_array(64, 64), "JPEG"))
    position = min(position, len(data) - 1)
    data[position:position + len(garbage)] = garbage
    try:
        preprocessing.decode_image(bytes(data))
    except InvalidImage:
        pass


def test_max_side_shrinks_large_jpegs_keeping_aspect():
    rgb = preprocessing.decode_image(encode(lesion_array(3000, 2000), "JPEG"), max_side=1024)
    assert rgb.shape == (683, 1024, 3)


class CapturingClassifier:
    """Records the prepared image the app's assessment hands its classifier."""

    gate = None

    def __init__(self):
        from tests.fakes import FakeClassifier

        self._fake = FakeClassifier()
        self.info = self._fake.info
        self.prepared = None

    def analyse(self, prepared, **kwargs):
        self.prepared = prepared
        return self._fake.analyse(prepared, **kwargs)


def served_tensor(jpeg: bytes, size: int) -> np.ndarray:
    """The tensor the server feeds the network for an upload: the upload decoded and assessed as
    the app does, then `network_input` (which `KerasClassifier.analyse` calls) of what the
    classifier was handed."""
    from dermalens.assessment import assess_image, decode_for_analysis

    classifier = CapturingClassifier()
    assess_image(classifier, decode_for_analysis(jpeg))
    return preprocessing.network_input(classifier.prepared, size).tensor


@pytest.mark.parametrize("shape", [(150, 200), (450, 600), (4000, 6000), (600, 450), (333, 333), (64, 1000)])
def test_network_input_handles_any_size_and_aspect(shape):
    tensor = preprocessing.network_input(preprocessing.prepare(lesion_array(shape[1], shape[0])), 128).tensor
    assert tensor.shape == (128, 128, 3) and tensor.dtype == np.float32
    assert -1.0 <= tensor.min() and tensor.max() <= 1.0


@pytest.mark.parametrize("width, height", [(200, 150), (600, 450), (1000, 1000)])
def test_training_and_serving_paths_give_the_same_tensor(tmp_path, width, height):
    """The validation tensors the trainer builds equal what the app computes for the same file:
    the network input of the very prepared image the server's assessment hands its classifier."""
    from dermalens.training import data

    data_dir = tmp_path / "data"
    (data_dir / "images").mkdir(parents=True)
    jpeg = encode(lesion_array(width, height), "JPEG", quality=80)
    (data_dir / "images" / "ISIC_1.jpg").write_bytes(jpeg)
    (data_dir / "HAM10000_metadata.csv").write_text(
        "lesion_id,image_id,dx,dx_type,age,sex,localization\nHAM_1,ISIC_1,mel,histo,45.0,male,back\n")
    rows = data.read_ham10000(data_dir)
    _, training_inputs, training_metadata, _ = data.load_arrays(data_dir, rows, 128, 160)

    np.testing.assert_array_equal(training_inputs[0], served_tensor(jpeg, 128))
    np.testing.assert_array_equal(training_metadata[0], preprocessing.encode_metadata(45, "male", "back"))


def test_the_trainer_builds_served_tensors_only_for_the_rows_asked(tmp_path):
    """Training augments the canvases and validates on served tensors: with a mask, the trainer
    builds those tensors for the masked rows only, in row order, and canvases for every row."""
    from dermalens.training import data

    data_dir = tmp_path / "data"
    (data_dir / "images").mkdir(parents=True)
    jpegs = {f"ISIC_{n}": encode(lesion_array(200 + 40 * n, 150), "JPEG", quality=80) for n in range(3)}
    for image_id, jpeg in jpegs.items():
        (data_dir / "images" / f"{image_id}.jpg").write_bytes(jpeg)
    (data_dir / "HAM10000_metadata.csv").write_text(
        "lesion_id,image_id,dx,dx_type,age,sex,localization\n"
        + "".join(f"HAM_{n},ISIC_{n},nv,histo,,,\n" for n in range(3)))
    rows = data.read_ham10000(data_dir)
    canvases, inputs, metadata, labels = data.load_arrays(
        data_dir, rows, 128, 160, served=np.array([True, False, True]))

    assert canvases.shape == (3, 160, 160, 3) and len(metadata) == len(labels) == 3
    assert inputs.shape == (2, 128, 128, 3)
    for tensor, image_id in zip(inputs, ["ISIC_0", "ISIC_2"]):
        np.testing.assert_array_equal(tensor, served_tensor(jpegs[image_id], 128))


def test_a_larger_upload_is_seen_as_its_own_training_style_copy():
    """A sharp 600x450 photo reaches the network exactly as the 200x150 quality-75 JPEG copy the
    training data were made of would, not with detail and texture the network never saw."""
    photo = lesion_array(600, 450)
    copy = encode(cv2.resize(photo, (200, 150), interpolation=cv2.INTER_AREA), "JPEG", quality=75)
    np.testing.assert_array_equal(
        preprocessing.network_input(preprocessing.prepare(photo), 160).tensor,
        preprocessing.network_input(preprocessing.prepare(preprocessing.decode_image(copy)), 160).tensor)


@pytest.mark.parametrize("shape", [(150, 200), (120, 90), (150, 150), (1000, 64)])
def test_images_no_larger_than_the_training_copies_are_left_alone(shape):
    rgb = lesion_array(shape[1], shape[0])
    assert preprocessing.match_training_copies(rgb) is rgb


@pytest.mark.parametrize("shape, matched", [((450, 600), (150, 200)), ((4000, 6000), (150, 225)),
                                            ((900, 300), (450, 150)), ((333, 333), (150, 150))])
def test_larger_images_are_brought_to_the_training_resolution_keeping_aspect(shape, matched):
    assert preprocessing.match_training_copies(lesion_array(shape[1], shape[0])).shape == (*matched, 3)


@pytest.mark.parametrize("shape", [(150, 200), (450, 600), (600, 450), (333, 333)])
def test_without_a_dark_field_edge_the_centre_square_is_analysed_as_it_is(shape):
    height, width = shape
    rgb = lesion_array(width, height)
    prepared = preprocessing.prepare(rgb)
    matched = preprocessing.match_training_copies(rgb)
    assert preprocessing.outside_of_field(matched) is None
    np.testing.assert_array_equal(prepared.pixels, matched)
    rows, cols = matched.shape[:2]
    side = min(rows, cols)
    assert prepared.square == ((rows - side) // 2, (cols - side) // 2, side)


@pytest.mark.parametrize("centre, radius", [((300, 225), 200), ((300, 225), 270), ((260, 240), 200)])
def test_the_outside_of_a_round_field_of_view_is_filled_in_and_the_lit_field_kept(centre, radius):
    rgb = in_round_field(lesion_array(600, 450), centre, radius)
    matched = preprocessing.match_training_copies(rgb)
    outside = preprocessing.outside_of_field(matched)
    dark = matched.max(axis=2) <= preprocessing.FIELD_DARK_LEVEL
    assert outside is not None and outside[dark].all()
    assert not outside[75, 100]  # the dark lesion in the middle is inside the field

    prepared = preprocessing.prepare(rgb)
    assert (prepared.region.max(axis=2) <= preprocessing.FIELD_DARK_LEVEL).mean() < 0.01
    np.testing.assert_array_equal(prepared.pixels[~outside], matched[~outside])


@pytest.mark.parametrize("centre, radius", [((300, 225), 200), ((300, 225), 270), ((260, 240), 200)])
def test_a_round_field_does_not_magnify_the_lesion(centre, radius):
    """The analysed square is the shorter side, centred on the field (not a square cropped inside
    the circle, which would enlarge the lesion and cut off its border)."""
    prepared = preprocessing.prepare(in_round_field(lesion_array(600, 450), centre, radius))
    top, left, side = prepared.square
    scale = prepared.pixels.shape[0] / 450
    assert side == prepared.pixels.shape[0] == preprocessing.prepare(lesion_array(600, 450)).square[2]
    assert abs(left + side / 2 - centre[0] * scale) <= 2
    assert top == 0


def test_dark_lesions_are_not_taken_for_the_field_edge():
    """A very dark lesion in the middle, or touching one edge, is analysed as it is."""
    middle = lesion_array(600, 450, colour=(5, 5, 5))
    at_edge = lesion_array(600, 450)
    at_edge[150:300, :120] = 3
    for rgb in (middle, at_edge):
        matched = preprocessing.match_training_copies(rgb)
        assert preprocessing.outside_of_field(matched) is None
        np.testing.assert_array_equal(preprocessing.prepare(rgb).pixels, matched)


def test_an_image_with_next_to_nothing_lit_is_left_for_the_gate_to_call_too_dark():
    rgb = in_round_field(lesion_array(600, 450), (300, 225), 80)
    matched = preprocessing.match_training_copies(rgb)
    assert preprocessing.outside_of_field(matched) is None
    np.testing.assert_array_equal(preprocessing.prepare(rgb).pixels, matched)


def test_the_field_square_is_the_same_at_every_resolution():
    """Found on the training copies' scale, so the square found on the matched copy, carried over
    to the stored display copy (as the heatmap overlay does), lies where it does in the matched copy."""
    for shape in ((900, 1200), (450, 600)):
        rgb = in_round_field(lesion_array(shape[1], shape[0]), (shape[1] * 9 // 20, shape[0] // 2), shape[0] // 2)
        prepared = preprocessing.prepare(rgb)
        top, left, side = prepared.square_on(rgb.shape)
        scale = rgb.shape[0] / prepared.pixels.shape[0]
        assert side == shape[0] and top == 0
        assert abs(left + side / 2 - shape[1] * 9 / 20) <= 2 * scale


@pytest.mark.parametrize("shape", [(150, 200), (768, 1024), (1024, 683), (500, 500)])
def test_the_analysed_square_carried_to_another_resolution_stays_inside_it(shape):
    rgb = in_round_field(lesion_array(shape[1], shape[0]), (shape[1] // 2, shape[0] // 2), min(shape) // 2)
    prepared = preprocessing.prepare(rgb)
    top, left, side = prepared.square_on(rgb.shape)
    assert 0 <= top and top + side <= shape[0] and 0 <= left and left + side <= shape[1]
    assert prepared.square_on(prepared.pixels.shape) == prepared.square


def test_the_network_sees_the_filled_field_and_the_overlay_dims_the_rest():
    from dermalens.explanation import OUTSIDE_DIMMING, overlay_heatmap

    rgb = in_round_field(lesion_array(600, 450), (300, 225), 200)
    prepared = preprocessing.prepare(rgb)
    top, left, side = prepared.square
    expected = cv2.resize(prepared.pixels[top:top + side, left:left + side], (160, 160),
                          interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(prepared.resized_region(160), expected)
    assert (prepared.resized_region(160).max(axis=2) <= preprocessing.FIELD_DARK_LEVEL).mean() < 0.01

    top, left, side = prepared.square_on(rgb.shape)
    overlay = overlay_heatmap(rgb, np.zeros((5, 5)), (top, left, side))
    outside = np.ones(rgb.shape[:2], bool)
    outside[top:top + side, left:left + side] = False
    dimmed = np.round(rgb[outside].astype(np.float32) * (1 - OUTSIDE_DIMMING))
    np.testing.assert_allclose(overlay[outside], dimmed, atol=1)


def test_metadata_encoding_with_any_field_missing():
    full = preprocessing.encode_metadata(60, "female", "face")
    assert full.shape == (preprocessing.METADATA_SIZE,)
    assert full[0] == pytest.approx(0.5) and full[1] == 1 and full.sum() == pytest.approx(3.5)
    assert not preprocessing.encode_metadata().any()
    assert preprocessing.encode_metadata(None, "male", None).sum() == 1
    assert preprocessing.encode_metadata(float("nan"), None, "unknown").sum() == 0
    for site in BODY_SITES:
        assert preprocessing.encode_metadata(site=site).sum() == 1
