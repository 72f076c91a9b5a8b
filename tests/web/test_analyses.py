"""The clinician's main journey: upload an image, read the result, keep and prune a history."""

import io
import re

import pytest
from markupsafe import escape
from PIL import Image

from dermalens.lesions import CLASS_NAMES, CLASSES
from tests.helpers import analysis_id_from, make_app, row_count, stored_files, upload
from tests.fakes import FakeClassifier
from tests.images import encode, lesion_array, lesion_jpeg, lesion_png, pixel_flood_png


def test_new_analysis_form_offers_every_input(logged_in):
    page = logged_in.get("/analyses/new").get_data(as_text=True)
    for name in ("image", "patient_ref", "lesion_ref", "age", "sex", "site", "note"):
        assert f'name="{name}"' in page
    assert 'enctype="multipart/form-data"' in page
    assert "data-busy" in page  # the busy indicator shown while analysing
    assert "data-upload-form" in page
    assert "Decision support only" in page
    # The model is measurably sensitive to colour rendering (model card), so the form says so.
    assert "standard colour settings" in page


def test_upload_shows_the_complete_result(app, logged_in):
    response = upload(logged_in, lesion_jpeg(), patient_ref="PT-001", lesion_ref="L-back-1",
                      age="54", sex="female", site="back", note="changed colour")
    assert response.status_code == 303
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    for code in CLASSES:
        assert str(escape(CLASS_NAMES[code])) in page
    assert page.count("<meter") == 7
    assert "Malignant probability" in page and "Recommended action" in page
    assert "fake-resnet" in page and "0.0-test" in page
    assert "not a diagnosis" in page
    assert "standard settings" in page  # the model's known limits, colour rendering among them
    for value in ("PT-001", "L-back-1", "54", "female", "Back (posterior torso)", "changed colour"):
        assert value in page
    analysis_id = analysis_id_from(response)
    assert f"/analyses/{analysis_id}/heatmap" in page and f"/analyses/{analysis_id}/image" in page
    assert row_count(app) == 1 and len(stored_files(app)) == 2


def test_each_probability_carries_its_clinical_group_in_words_and_colour(logged_in, analysis_id):
    page = logged_in.get(f"/analyses/{analysis_id}").get_data(as_text=True)
    rows = re.findall(r'<tr class="(?:top-class )?group-(\w+)">\s*<th scope="row">([^<]+) <span class="muted">'
                      r'\((\w+)\)</span>\s*<span class="group-tag group-tag-(\w+)">([^<]+)</span>', page)
    assert sorted(row[2] for row in rows) == sorted(CLASSES)
    for row_group, _, code, tag_group, label in rows:
        expected = "malignant" if code in ("mel", "bcc", "akiec") else "benign"
        assert row_group == tag_group == expected and label.lower().startswith(expected)
        assert re.search(rf'<meter class="bar-{expected}"[^>]*aria-label="{re.escape(str(escape(CLASS_NAMES[code])))}', page)


def test_the_heatmap_starts_blended_with_the_image_under_one_name(logged_in, analysis_id):
    page = logged_in.get(f"/analyses/{analysis_id}").get_data(as_text=True)
    slider = re.search(r'<input type="range" id="heatmap-opacity"[^>]*>', page).group(0)
    assert 'value="50"' in slider
    assert "Grad-CAM heatmap strength" in page and 'data-heatmap-name="Grad-CAM heatmap"' in page
    assert "Grad-CAM overlay" not in page and "heatmap overlay" not in page


def test_the_pages_script_gets_the_result_address_and_keeps_the_image_on_a_refusal(app, logged_in):
    script = {"X-Requested-With": "XMLHttpRequest"}
    sent = logged_in.post("/analyses", data={"image": (io.BytesIO(lesion_jpeg()), "a.jpg")},
                          content_type="multipart/form-data", headers=script)
    assert sent.status_code == 201 and re.fullmatch(r"/analyses/[A-Za-z0-9_-]{20,}", sent.headers["Location"])
    refused = logged_in.post("/analyses", data={"image": (io.BytesIO(lesion_jpeg()), "a.jpg"), "age": "200"},
                             content_type="multipart/form-data", headers=script)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "choose the image again" not in page
    age_field = re.search(r'<input[^>]*id="age"[^>]*>', page).group(0)
    assert "autofocus" in age_field and 'aria-invalid="true"' in age_field and 'value="200"' in age_field
    assert page.count("autofocus") == 1
    assert row_count(app) == 1 and len(stored_files(app)) == 2  # the refusal stored nothing


def test_without_the_script_a_refusal_asks_for_the_image_again(logged_in):
    page = upload(logged_in, lesion_jpeg(), age="200").get_data(as_text=True)
    assert "choose the image again" in page


def test_a_refused_image_takes_focus(logged_in):
    page = upload(logged_in, b"not an image", filename="x.jpg").get_data(as_text=True)
    assert re.search(r'<input type="file" id="image"[^>]*autofocus', page, re.S)
    assert 'id="form-error"' in page


def test_the_upload_form_shows_a_preview_and_real_progress(logged_in):
    page = logged_in.get("/analyses/new").get_data(as_text=True)
    assert "data-preview" in page and '<progress class="upload-progress"' in page


def test_probabilities_are_listed_top_class_first(logged_in):
    red = encode(lesion_array(colour=(200, 30, 30)))  # the fake calls red lesions melanoma
    page = logged_in.get(upload(logged_in, red).headers["Location"]).get_data(as_text=True)
    rows = re.findall(r'<th scope="row">([^<]+) <span', page)
    assert rows[0] == CLASS_NAMES["mel"]
    assert "Urgent referral" in page


def test_stored_image_is_reencoded_and_served_to_its_owner(logged_in, analysis_id):
    image = logged_in.get(f"/analyses/{analysis_id}/image")
    heatmap = logged_in.get(f"/analyses/{analysis_id}/heatmap")
    assert image.mimetype == "image/jpeg" and image.headers["X-Content-Type-Options"] == "nosniff"
    assert heatmap.mimetype == "image/jpeg"
    assert image.headers["Cache-Control"] == "no-store"
    decoded_image = Image.open(io.BytesIO(image.data))
    decoded_heatmap = Image.open(io.BytesIO(heatmap.data))
    assert decoded_image.size == decoded_heatmap.size == (320, 240)
    assert not decoded_image.getexif()


def test_a_png_heatmap_from_an_earlier_version_is_still_served_as_png(app, logged_in, analysis_id):
    from pathlib import Path

    from dermalens.extensions import db
    from dermalens.records import Analysis

    folder = Path(app.config["UPLOAD_FOLDER"])
    with app.app_context():
        analysis = db.session.query(Analysis).filter_by(public_id=analysis_id).one()
        overlay = Image.open(folder / analysis.heatmap_file)
        png = io.BytesIO()
        overlay.save(png, "PNG")
        analysis.heatmap_file = app.extensions["files"].write_new(png.getvalue(), "png")
        db.session.commit()

    heatmap = logged_in.get(f"/analyses/{analysis_id}/heatmap")
    assert heatmap.mimetype == "image/png" and heatmap.data.startswith(b"\x89PNG")
    assert logged_in.get(f"/analyses/{analysis_id}/report.pdf").data.startswith(b"%PDF-")


def test_huge_upload_is_stored_at_display_size(logged_in):
    response = upload(logged_in, lesion_jpeg(3000, 2000))
    image = logged_in.get(response.headers["Location"] + "/image")
    assert Image.open(io.BytesIO(image.data)).size == (1024, 683)


def test_png_named_jpg_is_judged_by_content(logged_in):
    response = upload(logged_in, lesion_png(), filename="actually-a-png.jpg")
    assert response.status_code == 303


def test_hostile_filename_is_only_shown_escaped(logged_in):
    name = "<script>alert(1)</script>\u202e../../x.jpg"
    page = logged_in.get(upload(logged_in, lesion_jpeg(), filename=name).headers["Location"])
    text = page.get_data(as_text=True)
    assert "<script>alert(1)" not in text and "&lt;script&gt;" in text and "\u202e" not in text


def test_note_with_markup_is_escaped(logged_in):
    response = upload(logged_in, lesion_jpeg(), note='<script>alert("x")</script>')
    text = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert '<script>alert("x")' not in text and "&lt;script&gt;" in text


BAD_UPLOADS = {
    "missing file": None,
    "empty file": b"",
    "not an image": b"<html><script>alert(1)</script></html>",
    "random bytes": bytes(range(256)) * 8,
    "truncated jpeg": lesion_jpeg()[:600],
    "corrupt png": lesion_png()[:40] + b"\x00" * 200,
    "gif": encode(lesion_array(), "GIF"),
    "bmp": encode(lesion_array(), "BMP"),
    "webp": encode(lesion_array(), "WEBP"),
    "tiff": encode(lesion_array(), "TIFF"),
    "too many pixels": pixel_flood_png(),
    "too small": encode(lesion_array(8, 8), "PNG"),
    "one pixel wide": encode(lesion_array(1, 1000), "PNG"),
}


@pytest.mark.parametrize("kind", BAD_UPLOADS)
def test_bad_uploads_get_a_clear_error_and_store_nothing(app, logged_in, kind):
    response = upload(logged_in, BAD_UPLOADS[kind])
    assert response.status_code == 400
    assert b'class="flash flash-error"' in response.data
    assert row_count(app) == 0 and stored_files(app) == []


def test_upload_over_the_size_limit_gets_413(tmp_path):
    app = make_app(tmp_path, MAX_CONTENT_LENGTH=200_000)
    client = app.test_client()
    client.post("/register", data={"username": "alice", "password": "x" * 12, "confirm": "x" * 12})
    response = upload(client, b"\xff\xd8\xff" + b"0" * 300_000)
    assert response.status_code == 413
    assert b"limit is 0 MB" in response.data or b"too large" in response.data
    assert row_count(app) == 0 and stored_files(app) == []


@pytest.mark.parametrize("field, value, message", [
    ("age", "fifty", "whole number"), ("age", "130", "between 0 and 120"),
    ("sex", "other", "Sex must be"), ("site", "moon", "body site"),
    ("patient_ref", "x" * 65, "At most 64"),
])
def test_invalid_fields_are_refused_with_the_field_marked(app, logged_in, field, value, message):
    response = upload(logged_in, lesion_jpeg(), **{field: value})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert row_count(app) == 0 and stored_files(app) == []


def test_inference_failure_leaves_no_row_and_no_file(tmp_path):
    app = make_app(tmp_path, CLASSIFIER=FakeClassifier(fail=True))
    client = app.test_client()
    client.post("/register", data={"username": "alice", "password": "x" * 12, "confirm": "x" * 12})
    response = upload(client, lesion_jpeg())
    assert response.status_code == 500
    assert b"Traceback" not in response.data
    assert row_count(app) == 0 and stored_files(app) == []


def test_delete_asks_for_confirmation_then_removes_row_and_files(app, logged_in, analysis_id):
    assert logged_in.get(f"/analyses/{analysis_id}/delete").status_code == 405
    confirm = logged_in.get(f"/analyses/{analysis_id}/confirm-delete")
    assert confirm.status_code == 200 and b"Delete permanently" in confirm.data
    assert row_count(app) == 1 and len(stored_files(app)) == 2
    response = logged_in.post(f"/analyses/{analysis_id}/delete")
    assert response.status_code == 303
    assert row_count(app) == 0 and stored_files(app) == []
    assert logged_in.get(f"/analyses/{analysis_id}").status_code == 404


def test_reopened_analysis_is_shown_exactly_as_first(logged_in, analysis_id):
    def page() -> str:
        # The CSRF token is signed with the time, so it differs once a second has passed.
        html = logged_in.get(f"/analyses/{analysis_id}").get_data(as_text=True)
        return re.sub(r'(name="csrf_token" value=")[^"]*"', r'\1"', html)

    logged_in.get("/history")  # consumes the one-off welcome message
    first = page()
    logged_in.get("/history")
    assert 'name="csrf_token" value=""' in first and page() == first
