"""The bad-input checklist items not covered elsewhere: polyglots, names, formats, properties."""

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from dermalens import analysis_service, explanation
from dermalens.inference import upsample_heatmap
from dermalens.views.auth import is_safe_next
from tests.helpers import row_count, stored_files, upload
from tests.images import encode, lesion_array, lesion_jpeg, scan_bomb


def test_polyglot_jpeg_is_stored_as_reencoded_pixels_only(logged_in):
    polyglot = lesion_jpeg() + b"<script>alert(document.cookie)</script><?php system($_GET[0]); ?>"
    response = upload(logged_in, polyglot)
    assert response.status_code == 303
    image = logged_in.get(response.headers["Location"] + "/image")
    assert b"<script>" not in image.data and b"<?php" not in image.data
    assert image.headers["X-Content-Type-Options"] == "nosniff"


def test_gps_exif_is_not_stored(logged_in):
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPSInfo
    exif[0x0112] = 3
    buffer = io.BytesIO()
    Image.fromarray(lesion_array()).save(buffer, format="JPEG", exif=exif.tobytes())
    stored = logged_in.get(upload(logged_in, buffer.getvalue()).headers["Location"] + "/image").data
    assert not Image.open(io.BytesIO(stored)).getexif()


@pytest.mark.parametrize("filename", ["../../x.jpg", "a%00.php.jpg", "a\x00b.jpg", "x" * 300 + ".jpg",
                                      "\u202egpj.exe", "/etc/passwd", "C:\\\\boot.ini"])
def test_hostile_filenames_never_become_paths(app, logged_in, filename):
    response = upload(logged_in, lesion_jpeg(), filename=filename)
    assert response.status_code == 303
    for name in stored_files(app):
        assert analysis_service.storage._STORED_NAME.match(name)
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "\u202e" not in page and "\x00" not in page


def ico_bytes():
    buffer = io.BytesIO()
    Image.fromarray(lesion_array(64, 64)).save(buffer, format="ICO")
    return buffer.getvalue()


@pytest.mark.parametrize("data", [
    b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    b"8BPS\x00\x01" + b"\x00" * 200,                              # Photoshop
    b"SIMPLE  =                    T" + b" " * 200,                # FITS
    ico_bytes(),
    encode(lesion_array(), "GIF", save_all=True),
])
def test_other_formats_are_refused(app, logged_in, data):
    assert upload(logged_in, data).status_code == 400
    assert row_count(app) == 0 and stored_files(app) == []


def test_a_jpeg_scan_bomb_is_refused_and_nothing_is_stored(app, logged_in):
    response = upload(logged_in, scan_bomb(np.zeros((2000, 2000, 3), np.uint8), repeats=1000))
    assert response.status_code == 400 and b"scans" in response.data
    assert row_count(app) == 0 and stored_files(app) == []


def test_zero_gradient_heatmap_has_no_nan_and_full_size_overlay():
    heatmap = upsample_heatmap(np.zeros((4, 4)), 128)
    assert np.isfinite(heatmap).all() and heatmap.max() == 0
    assert np.isfinite(upsample_heatmap(np.full((4, 4), np.nan), 128)).all()
    overlay = explanation.overlay_heatmap(lesion_array(500, 300), heatmap, (0, 100, 300))
    assert overlay.shape == (300, 500, 3) and overlay.dtype == np.uint8


def test_hsts_only_over_https(client):
    assert "Strict-Transport-Security" in client.get("/login", base_url="https://localhost").headers
    assert "Strict-Transport-Security" not in client.get("/login").headers


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_safe_next_only_ever_allows_local_paths(target):
    if is_safe_next(target):
        assert target.startswith("/") and not target.startswith("//")
        assert "\\" not in target and "://" not in target.split("?")[0]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=100))
def test_cleaned_text_has_no_control_or_bidi_characters(value):
    import unicodedata

    try:
        cleaned = analysis_service.clean_text(value, 64, "patient_ref")
    except analysis_service.InvalidInput:
        return
    if cleaned is not None:
        assert len(cleaned) <= 64 and cleaned == cleaned.strip()
        assert all(unicodedata.category(ch) not in ("Cc", "Cf") for ch in cleaned)
