"""History: own analyses, newest first, paginated and filterable."""

import re
from datetime import datetime, timedelta

from dermalens.extensions import db
from dermalens.records import Analysis
from tests.helpers import analysis_id_from, upload
from tests.images import benign_jpeg, encode, lesion_array, lesion_jpeg

ID_PATTERN = re.compile(r'/analyses/([A-Za-z0-9_-]{20,})"')


def listed_ids(page_html: str) -> list[str]:
    ids = []
    for found in ID_PATTERN.findall(page_html):
        if found not in ids:
            ids.append(found)
    return ids


def test_empty_history_explains_itself(logged_in):
    page = logged_in.get("/history").get_data(as_text=True)
    assert "No analyses yet" in page and "Start a new analysis" in page


def test_history_is_newest_first_and_paginated(app, logged_in):
    ids = [analysis_id_from(upload(logged_in, lesion_jpeg(seed=i), patient_ref=f"P{i}"))
           for i in range(23)]
    # Spread creation times so the order does not depend on clock resolution.
    with app.app_context():
        for age_minutes, public_id in enumerate(reversed(ids)):
            analysis = db.session.query(Analysis).filter_by(public_id=public_id).one()
            analysis.created_at = datetime(2026, 1, 1) - timedelta(minutes=age_minutes)
        db.session.commit()
    first = logged_in.get("/history").get_data(as_text=True)
    second = logged_in.get("/history?page=2").get_data(as_text=True)
    assert listed_ids(first) == list(reversed(ids))[:20]
    assert listed_ids(second) == list(reversed(ids))[20:]
    assert "Page 1 of 2" in first and "23 analyses" in first


def test_a_page_past_the_last_says_how_many_there_are(logged_in):
    for i in range(3):
        upload(logged_in, lesion_jpeg(seed=i), patient_ref="PT-5")
    response = logged_in.get("/history?page=99&patient_ref=PT-5")
    page = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "There is no page 99" in page and "No analyses yet" not in page
    assert "fill 1 page." in page and "page=1" in page and "patient_ref=PT-5" in page


def test_a_from_date_after_the_to_date_is_explained(logged_in, analysis_id):
    response = logged_in.get("/history?date_from=2026-03-01&date_to=2026-02-01")
    assert response.status_code == 400
    assert "The from date (2026-03-01) is after the to date (2026-02-01)" in response.get_data(as_text=True)


def test_times_are_shown_with_seconds_in_the_clinics_time_zone(tmp_path):
    from tests.helpers import Auth, make_app

    app = make_app(tmp_path, TIME_ZONE="Europe/Berlin")
    client = app.test_client()
    Auth(client).register()
    summer = analysis_id_from(upload(client, lesion_jpeg(seed=1)))
    winter = analysis_id_from(upload(client, lesion_jpeg(seed=2)))
    with app.app_context():
        for public_id, moment in ((summer, datetime(2026, 7, 1, 21, 30, 5)), (winter, datetime(2026, 1, 5, 23, 10, 7))):
            db.session.query(Analysis).filter_by(public_id=public_id).one().created_at = moment
        db.session.commit()
    page = client.get("/history").get_data(as_text=True)
    assert "2026-07-01 23:30:05 CEST" in page and "2026-01-06 00:10:07 CET" in page
    assert "Date (Europe/Berlin)" in page
    assert "2026-01-06 00:10:07 CET" in client.get(f"/analyses/{winter}").get_data(as_text=True)
    # A day typed in the filter is the clinic's day: 23:10 UTC on 5 January is 6 January in Berlin.
    assert listed_ids(client.get("/history?date_from=2026-01-06&date_to=2026-01-06").get_data(as_text=True)) == [winter]
    assert listed_ids(client.get("/history?date_to=2026-01-05").get_data(as_text=True)) == []


def test_history_filters_by_patient_risk_and_date(app, logged_in):
    red = encode(lesion_array(colour=(200, 30, 30)))
    blue = benign_jpeg()
    urgent = analysis_id_from(upload(logged_in, red, patient_ref="SMITH-7"))
    monitor = analysis_id_from(upload(logged_in, blue, patient_ref="JONES-2"))
    with app.app_context():
        old = db.session.query(Analysis).filter_by(public_id=monitor).one()
        old.created_at = datetime(2025, 3, 10, 12, 0)
        db.session.commit()

    assert listed_ids(logged_in.get("/history?patient_ref=smith").get_data(as_text=True)) == [urgent]
    assert listed_ids(logged_in.get("/history?risk=urgent").get_data(as_text=True)) == [urgent]
    assert listed_ids(logged_in.get("/history?risk=monitor").get_data(as_text=True)) == [monitor]
    in_march = "/history?date_from=2025-03-10&date_to=2025-03-10"
    assert listed_ids(logged_in.get(in_march).get_data(as_text=True)) == [monitor]
    none_match = logged_in.get("/history?patient_ref=NOBODY").get_data(as_text=True)
    assert "No analyses match" in none_match


def test_invalid_filters_are_explained(logged_in):
    response = logged_in.get("/history?date_from=yesterday")
    assert response.status_code == 400 and b"YYYY-MM-DD" in response.data
    assert logged_in.get("/history?risk=apocalyptic").status_code == 400


def test_pagination_links_keep_filters(logged_in):
    for i in range(21):
        upload(logged_in, lesion_jpeg(seed=i), patient_ref="SAME")
    page = logged_in.get("/history?patient_ref=SAME").get_data(as_text=True)
    assert "page=2" in page and "patient_ref=SAME" in page
