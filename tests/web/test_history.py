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
    assert listed_ids(logged_in.get("/history?page=99").get_data(as_text=True)) == []


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
