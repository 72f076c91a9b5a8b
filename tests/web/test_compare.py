"""Comparing analyses: two to four of one's own, side by side, oldest first, with cautions."""

import io
import json
import re
from datetime import datetime

import pytest
from pypdf import PdfReader

from dermalens import analysis_service, gate
from dermalens.extensions import db
from dermalens.records import Analysis, AuditEvent
from tests.helpers import analysis_id_from, token_for, upload
from tests.images import benign_jpeg, malignant_jpeg
from tests.helpers import pdf_text


def analyse(client, image=None, **fields) -> str:
    return analysis_id_from(upload(client, image or benign_jpeg(), **fields))


def set_created(app, public_id: str, when: datetime) -> None:
    with app.app_context():
        db.session.query(Analysis).filter_by(public_id=public_id).one().created_at = when
        db.session.commit()


def compare_url(*ids: str) -> str:
    return "/analyses/compare?" + "&".join(f"ids={public_id}" for public_id in ids)


def api_compare_url(*ids: str) -> str:
    return "/api/v1" + compare_url(*ids)


def column_headings(page: str) -> list[str]:
    """The analysis ids heading the comparison's columns, left to right."""
    head = page.split("<thead>", 1)[1].split("</thead>", 1)[0]
    return re.findall(r'/analyses/([A-Za-z0-9_-]{20,})"', head)


@pytest.fixture
def follow_up(app, logged_in):
    """One lesion analysed twice: benign-looking in January, melanoma-looking in June (recorded
    in the other order, so that the oldest-first order cannot come from the row order)."""
    june = analyse(logged_in, malignant_jpeg(), patient_ref="PT-9", lesion_ref="back-1")
    january = analyse(logged_in, benign_jpeg(), patient_ref="PT-9", lesion_ref="back-1")
    set_created(app, january, datetime(2026, 1, 10, 9, 0))
    set_created(app, june, datetime(2026, 6, 2, 9, 0))
    return january, june


def test_two_analyses_of_one_lesion_are_shown_side_by_side_oldest_first(logged_in, follow_up):
    january, june = follow_up
    response = logged_in.get(compare_url(june, january))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert column_headings(page) == [january, june]
    for public_id in follow_up:
        assert f"/analyses/{public_id}/image" in page and f"/analyses/{public_id}/heatmap" in page
    assert ("From 2026-01-10 09:00:00 UTC to 2026-06-02 09:00:00 UTC, the malignant probability went "
            "from") in page
    assert "the risk category went from Monitor to Urgent referral: suspected melanoma." in page
    assert "not a measurement of change in the lesion" in page
    assert 'class="cautions"' not in page  # same patient, same lesion, same model


def test_the_change_is_the_difference_of_the_percentages_shown(app, logged_in, follow_up):
    january, june = follow_up
    with app.app_context():
        first, last = (db.session.query(Analysis).filter_by(public_id=i).one() for i in follow_up)
        # 86.4% and 73.4% unrounded differ by 13.0 points: as shown (86%, 73%) they differ by 13.
        first.malignant_probability, last.malignant_probability = 0.864, 0.734
        db.session.commit()
    page = logged_in.get(compare_url(january, june)).get_data(as_text=True)
    assert "went from 86% to 73% (-13 percentage points)" in page


@pytest.mark.parametrize("first, last, shown", [(0.8649, 0.7351, "86% to 74% (-12"),
                                                (0.125, 0.5, "12% to 50% (+38"), (0.3, 0.3, "30% to 30% (+0")])
def test_the_change_never_contradicts_the_rounded_figures(app, logged_in, follow_up, first, last, shown):
    january, june = follow_up
    with app.app_context():
        for public_id, probability in zip(follow_up, (first, last)):
            db.session.query(Analysis).filter_by(public_id=public_id).one().malignant_probability = probability
        db.session.commit()
    assert shown in logged_in.get(compare_url(january, june)).get_data(as_text=True)


@pytest.mark.parametrize("second_refs, different", [({"patient_ref": "PT-2", "lesion_ref": "arm"}, "patients"),
                                                    ({"patient_ref": "PT-1", "lesion_ref": "leg"}, "lesions")])
def test_no_change_is_described_between_different_patients_or_lesions(logged_in, second_refs, different):
    first = analyse(logged_in, patient_ref="PT-1", lesion_ref="arm")
    second = analyse(logged_in, **second_refs)
    page = logged_in.get(compare_url(first, second)).get_data(as_text=True)
    assert f"These analyses are of different {different}, so no change is described" in page
    assert "percentage points" not in page and "went from" not in page


def test_different_patients_lesions_and_model_versions_are_pointed_out(app, logged_in):
    first = analyse(logged_in, patient_ref="PT-1", lesion_ref="arm")
    second = analyse(logged_in, patient_ref="PT-2")
    with app.app_context():
        db.session.query(Analysis).filter_by(public_id=second).one().model_version = "0.9"
        db.session.commit()
    page = logged_in.get(compare_url(first, second)).get_data(as_text=True)
    assert "These analyses have different patient references." in page
    assert "Not every analysis has a lesion reference" in page
    assert "Made by different model versions (0.0-test, 0.9)" in page


def test_an_indeterminate_end_gives_no_change_in_probability(app, logged_in, follow_up):
    january, june = follow_up
    with app.app_context():
        db.session.query(Analysis).filter_by(public_id=june).one().risk_category = "indeterminate"
        db.session.commit()
    page = logged_in.get(compare_url(january, june)).get_data(as_text=True)
    assert "no change in probability is given" in page and "percentage points" not in page
    assert "(not assessed)" in page


def test_up_to_four_analyses_are_compared_in_the_order_they_were_made(app, logged_in):
    ids = [analyse(logged_in, patient_ref="PT-4") for _ in range(4)]
    # Dated in an order unrelated to the rows' or the ids' order.
    for public_id, month in zip(ids, (5, 2, 11, 8)):
        set_created(app, public_id, datetime(2026, month, 1))
    page = logged_in.get(compare_url(*ids)).get_data(as_text=True)
    assert column_headings(page) == [ids[1], ids[0], ids[3], ids[2]]
    assert "the risk category stayed Monitor." in page  # the fake finds all four benign


@pytest.mark.parametrize("count", [0, 1, 5])
def test_fewer_than_two_or_more_than_four_is_a_clear_error(logged_in, count):
    ids = [analyse(logged_in) for _ in range(count)]
    response = logged_in.get(compare_url(*ids))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f"Select between 2 and 4 analyses to compare ({count} selected)." in page
    assert "Back to history" in page


def test_the_same_analysis_twice_is_one_analysis(logged_in, analysis_id):
    response = logged_in.get(compare_url(analysis_id, analysis_id))
    assert response.status_code == 400
    assert "(1 selected)" in response.get_data(as_text=True)


def test_another_clinicians_analysis_makes_the_whole_comparison_404(app, client, auth, analysis_id):
    auth.logout()
    auth.register("mallory")
    own = analyse(client)
    response = client.get(compare_url(own, analysis_id))
    assert response.status_code == 404
    assert analysis_id not in response.get_data(as_text=True)


def test_an_unknown_id_is_404(logged_in, analysis_id):
    assert logged_in.get(compare_url(analysis_id, "x" * 22)).status_code == 404


def test_anonymous_users_are_sent_to_sign_in(client):
    response = client.get(compare_url("a" * 22, "b" * 22))
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_each_compared_analysis_is_audited_as_viewed(app, logged_in, follow_up):
    logged_in.get(compare_url(*follow_up))
    with app.app_context():
        events = db.session.query(AuditEvent).filter_by(action="analysis_viewed", detail="compared").all()
        assert sorted(event.record_id for event in events) == sorted(follow_up)


def test_history_offers_to_compare_the_ticked_analyses(logged_in, follow_up):
    page = logged_in.get("/history").get_data(as_text=True)
    assert 'action="/analyses/compare"' in page and "Compare selected" in page
    for public_id in follow_up:
        assert f'name="ids" value="{public_id}"' in page


def test_a_result_links_to_the_other_analyses_of_its_lesion(logged_in, follow_up):
    january, june = follow_up
    page = logged_in.get(f"/analyses/{june}").get_data(as_text=True)
    assert "Other analyses of this lesion" in page
    assert f"/analyses/compare?ids={june}&amp;ids={january}" in page


def test_a_result_without_both_references_lists_no_other_analyses(logged_in):
    first = analyse(logged_in, patient_ref="PT-5")
    analyse(logged_in, patient_ref="PT-5")
    page = logged_in.get(f"/analyses/{first}").get_data(as_text=True)
    assert "Other analyses of this lesion" not in page


def test_other_analyses_of_a_lesion_are_the_owners_only(app, client, auth, follow_up):
    auth.logout()
    auth.register("bob")
    bobs = analyse(client, patient_ref="PT-9", lesion_ref="back-1")
    page = client.get(f"/analyses/{bobs}").get_data(as_text=True)
    assert "Other analyses of this lesion" not in page
    assert not any(public_id in page for public_id in follow_up)


@pytest.mark.parametrize("values, expected", [
    (["a", " b ", "a", ""], ["a", "b"]),
    (["a", "b", "c", "d"], ["a", "b", "c", "d"]),
])
def test_comparison_ids_keep_their_order_without_duplicates_or_blanks(values, expected):
    assert analysis_service.parse_comparison_ids(values) == expected


@pytest.mark.parametrize("values", [[], ["a"], ["a", "a"], ["a", "b", "c", "d", "e"]])
def test_comparison_ids_out_of_range_are_refused(values):
    with pytest.raises(analysis_service.InvalidInput) as refused:
        analysis_service.parse_comparison_ids(values)
    assert refused.value.field == "ids" and refused.value.status == 400


def test_the_api_compares_as_the_page_does(app, client, auth, follow_up):
    january, june = follow_up
    headers = {"Authorization": f"Bearer {token_for(app, 'alice')}"}
    auth.logout()  # the API needs no session
    body = client.get(api_compare_url(june, january), headers=headers).json
    assert [item["id"] for item in body["items"]] == [january, june]
    first, last = body["items"]
    assert body["malignant_change_points"] == (round(100 * last["malignant_probability"])
                                               - round(100 * first["malignant_probability"]))
    assert body["cautions"] == [] and "not a diagnosis" in body["disclaimer"]


@pytest.mark.parametrize("ids, status", [(1, 400), (5, 400)])
def test_the_api_refuses_too_few_or_too_many_with_json(app, client, auth, ids, status):
    auth.register()
    headers = {"Authorization": f"Bearer {token_for(app, 'alice')}"}
    response = client.get(api_compare_url(*[f"{'x' * 21}{i}" for i in range(ids)]), headers=headers)
    assert response.status_code == status and "Select between 2 and 4" in response.json["error"]["message"]


def test_the_api_shows_nothing_when_one_id_is_another_clinicians(app, client, auth, follow_up):
    auth.logout()
    auth.register("mallory")
    response = client.get(api_compare_url(*follow_up), headers={"Authorization": f"Bearer {token_for(app, 'mallory')}"})
    assert response.status_code == 404 and follow_up[0] not in response.get_data(as_text=True)


def listed(page: str) -> list[str]:
    return re.findall(r'name="ids" value="([^"]+)"', page)


def test_history_and_api_filter_references_by_their_start_ignoring_case(app, client, auth):
    auth.register()
    back = analyse(client, patient_ref="PT-1", lesion_ref="Back-1")
    back_12 = analyse(client, patient_ref="PT-12", lesion_ref="back-12")
    analyse(client, patient_ref="PT-2", lesion_ref="arm")
    assert listed(client.get("/history?lesion_ref=back-1").get_data(as_text=True)) == [back_12, back]
    assert listed(client.get("/history?patient_ref=pt-1").get_data(as_text=True)) == [back_12, back]
    listing = client.get("/api/v1/analyses?lesion_ref=BACK-1",
                         headers={"Authorization": f"Bearer {token_for(app, 'alice')}"}).json
    assert [item["id"] for item in listing["items"]] == [back_12, back]


def test_one_lesions_analyses_are_listed_by_exact_references(app, client, auth):
    auth.register()
    back = analyse(client, patient_ref="PT-1", lesion_ref="Back-1")
    analyse(client, patient_ref="PT-12", lesion_ref="back-1")
    analyse(client, patient_ref="PT-1", lesion_ref="back-12")
    again = analyse(client, patient_ref="pt-1", lesion_ref="BACK-1")
    page = client.get(f"/analyses/{back}").get_data(as_text=True)
    link = re.search(r'href="(/history\?[^"]*match=exact[^"]*)"', page).group(1).replace("&amp;", "&")
    assert listed(client.get(link).get_data(as_text=True)) == [again, back]
    listing = client.get("/api/v1/analyses?patient_ref=pt-1&lesion_ref=back-1&match=exact",
                         headers={"Authorization": f"Bearer {token_for(app, 'alice')}"}).json
    assert [item["id"] for item in listing["items"]] == [again, back]


def test_the_same_lesion_is_recognised_whatever_the_case_of_its_references(logged_in):
    first = analyse(logged_in, patient_ref="pt-7", lesion_ref="Left Arm")
    second = analyse(logged_in, patient_ref="PT-7", lesion_ref="left arm")
    page = logged_in.get(f"/analyses/{second}").get_data(as_text=True)
    assert "Other analyses of this lesion" in page and first in page
    assert "/history?patient_ref=PT-7&amp;lesion_ref=left+arm" in page
    comparison = logged_in.get(compare_url(first, second)).get_data(as_text=True)
    assert 'class="cautions"' not in comparison


def test_references_with_accents_match_themselves(logged_in):
    first = analyse(logged_in, patient_ref="MÜLLER-3", lesion_ref="Knöchel")
    second = analyse(logged_in, patient_ref="MÜLLER-3", lesion_ref="Knöchel")
    assert first in logged_in.get(f"/analyses/{second}").get_data(as_text=True)
    page = logged_in.get("/history?lesion_ref=Knöchel").get_data(as_text=True)
    assert set(re.findall(r'name="ids" value="([^"]+)"', page)) == {first, second}


def test_references_are_escaped_in_the_comparison(logged_in):
    hostile = '<script>alert(1)</script>'
    ids = [analyse(logged_in, patient_ref=hostile, lesion_ref=hostile) for _ in range(2)]
    page = logged_in.get(compare_url(*ids)).get_data(as_text=True)
    assert hostile not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    result = logged_in.get(f"/analyses/{ids[1]}").get_data(as_text=True)
    assert hostile not in result and "Other analyses of this lesion" in result


def test_a_result_lists_the_three_most_recent_other_analyses_and_links_to_all(app, logged_in):
    ids = [analyse(logged_in, patient_ref="PT-8", lesion_ref="neck") for _ in range(5)]
    for public_id, day in zip(ids, range(1, 6)):
        set_created(app, public_id, datetime(2026, 3, day))
    page = logged_in.get(f"/analyses/{ids[2]}").get_data(as_text=True)
    listed = page.split("Other analyses of this lesion", 1)[1]
    # The oldest (March 1st) is left out: the three most recent others are March 5th, 4th, 2nd.
    assert [public_id for public_id in ids if f'href="/analyses/{public_id}"' in listed] == [ids[1], ids[3], ids[4]]
    assert f"/analyses/compare?ids={ids[2]}&amp;ids={ids[4]}&amp;ids={ids[3]}&amp;ids={ids[1]}" in listed
    assert "/history?patient_ref=PT-8&amp;lesion_ref=neck" in listed


def test_the_comparison_prints_as_a_pdf_to_file(app, logged_in, follow_up):
    january, june = follow_up
    page = logged_in.get(compare_url(january, june)).get_data(as_text=True)
    assert f"/analyses/compare/report.pdf?ids={january}&amp;ids={june}" in page
    response = logged_in.get(f"/analyses/compare/report.pdf?ids={june}&ids={january}")
    assert response.status_code == 200 and response.data.startswith(b"%PDF-")
    assert response.mimetype == "application/pdf" and response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    text = " ".join(pdf_text(response.data).split())
    for expected in ("comparison of lesion analyses", "not a diagnosis", "PT-9", "back-1", "alice",
                     "2026-01-10 09:00", "2026-06-02 09:00", "the risk category went from Monitor to "
                     "Urgent referral", "not a measurement of change in the lesion", "signature"):
        assert expected in text, expected
    assert text.index("2026-01-10 09:00") < text.index("2026-06-02 09:00")  # oldest first
    assert len(PdfReader(io.BytesIO(response.data)).pages) == 1
    with app.app_context():
        events = db.session.query(AuditEvent).filter_by(action="analysis_downloaded").all()
        assert sorted(event.record_id for event in events) == sorted(follow_up)
        assert {event.detail for event in events} == {"comparison PDF (a4)"}


def test_four_analyses_with_cautions_and_flags_print_with_the_assessment_whole(app, logged_in):
    hostile = '<img src="http://127.0.0.1:9/x.png"/> a < b & c'
    ids = [analyse(logged_in, patient_ref=f"PT-{i}", lesion_ref=hostile) for i in range(4)]
    with app.app_context():
        analysis = db.session.query(Analysis).filter_by(public_id=ids[1]).one()
        analysis.risk_category = "indeterminate"
        analysis.indeterminate_reasons_json = json.dumps(["The image is too blurred to assess."])
        analysis.notices_json = json.dumps(gate.colour_notices((1.5, 1.3, 1.1)))
        db.session.commit()
    response = logged_in.get("/analyses/compare/report.pdf?paper=letter&" + compare_url(*ids).split("?")[1])
    assert response.status_code == 200
    reader = PdfReader(io.BytesIO(response.data))
    assert (round(reader.pages[0].mediabox.width), round(reader.pages[0].mediabox.height)) == (612, 792)
    text = " ".join(pdf_text(response.data).split())
    assert "These analyses have different patient references." in text and "a < b & c" in text
    assert "CANNOT ASSESS - RETAKE - The image is too blurred" in text and "NOTE - Colours adjusted" in text
    assert "not assessed" in text
    last_page = reader.pages[-1].extract_text()
    assert "Clinical impression" in last_page and "Date" in last_page


@pytest.mark.parametrize("prefix", ["", "/api/v1"])
def test_the_comparison_pdf_is_the_owners_only_and_needs_two_to_four(app, client, auth, follow_up, prefix):
    auth.logout()
    auth.register("mallory")
    headers = {"Authorization": f"Bearer {token_for(app, 'mallory')}"} if prefix else {}
    url = f"{prefix}/analyses/compare/report.pdf?" + compare_url(*follow_up).split("?")[1]
    assert client.get(url, headers=headers).status_code == 404
    own = analyse(client)
    response = client.get(f"{prefix}/analyses/compare/report.pdf?ids={own}", headers=headers)
    assert response.status_code == 400 and b"Select between 2 and 4" in response.data


def test_the_api_prints_a_comparison(app, client, auth, follow_up):
    headers = {"Authorization": f"Bearer {token_for(app, 'alice')}"}
    auth.logout()
    response = client.get("/api/v1/analyses/compare/report.pdf?" + compare_url(*follow_up).split("?")[1],
                          headers=headers)
    assert response.status_code == 200 and "PT-9" in pdf_text(response.data)
