"""Outcomes recorded against analyses, and the site performance worked out from them."""

import json
import re

import pytest

from dermalens import outcomes
from dermalens.extensions import db
from dermalens.records import Analysis, AuditEvent
from tests.helpers import PASSWORD, analysis_id_from, make_app, pdf_text, token_for, upload
from tests.images import benign_jpeg, lesion_jpeg

OUTCOME = {"diagnosis": "mel", "source": "histopathology", "date": "2026-03-01", "note": "Breslow 0.4 mm"}


def stored_outcome(app, public_id):
    with app.app_context():
        analysis = db.session.query(Analysis).filter_by(public_id=public_id).one()
        return outcomes.outcome_json(analysis)


def audit_actions(app, action):
    with app.app_context():
        return db.session.query(AuditEvent).filter_by(action=action).all()


def test_an_outcome_recorded_on_the_result_page_is_shown_kept_and_printed(app, logged_in, analysis_id):
    response = logged_in.post(f"/analyses/{analysis_id}/outcome", data=OUTCOME)
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/analyses/{analysis_id}#outcome")
    page = logged_in.get(f"/analyses/{analysis_id}").get_data(as_text=True)
    assert "Histopathology, 2026-03-01" in page and "Breslow 0.4 mm" in page
    assert stored_outcome(app, analysis_id)["diagnosis"] == "mel"
    text = " ".join(pdf_text(logged_in.get(f"/analyses/{analysis_id}/report.pdf").data).split())
    assert "Outcome (recorded) Melanoma (Histopathology, 2026-03-01). Breslow 0.4 mm" in text
    [event] = audit_actions(app, "outcome_recorded")
    assert event.record_id == analysis_id and event.detail == "mel"


def test_the_history_filters_by_outcome(logged_in, analysis_id):
    other = analysis_id_from(upload(logged_in, lesion_jpeg(seed=5), patient_ref="NO-OUTCOME"))
    logged_in.post(f"/analyses/{analysis_id}/outcome", data=OUTCOME)
    with_outcome = logged_in.get("/history?outcome=with").get_data(as_text=True)
    without = logged_in.get("/history?outcome=without").get_data(as_text=True)
    assert analysis_id in with_outcome and other not in with_outcome
    assert other in without and analysis_id not in without
    assert logged_in.get("/history?outcome=maybe").status_code == 400


@pytest.mark.parametrize("fields, culprit", [
    ({**OUTCOME, "diagnosis": "melanoma"}, "Diagnosis must be one of"),
    ({**OUTCOME, "diagnosis": ""}, "Diagnosis must be one of"),
    ({**OUTCOME, "source": "gut feeling"}, "How it was established"),
    ({**OUTCOME, "date": "01/03/2026"}, "YYYY-MM-DD"),
    ({**OUTCOME, "date": "2999-01-01"}, "future"),
    ({**OUTCOME, "note": "x" * 2001}, "At most 2000 characters"),
])
def test_bad_outcomes_are_refused_and_change_nothing(app, logged_in, analysis_id, fields, culprit):
    response = logged_in.post(f"/analyses/{analysis_id}/outcome", data=fields)
    assert response.status_code == 400 and culprit in response.get_data(as_text=True)
    headers = {"Authorization": f"Bearer {token_for(app, 'alice')}"}
    api = app.test_client().put(f"/api/v1/analyses/{analysis_id}/outcome", json=fields, headers=headers)
    assert api.status_code == 422 and culprit in api.json["error"]["message"]
    assert stored_outcome(app, analysis_id) is None and audit_actions(app, "outcome_recorded") == []


def test_the_outcome_form_needs_its_csrf_token(tmp_path):
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    client = app.test_client()

    def token_from(url):
        return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get(url).get_data(as_text=True)).group(1)

    client.post("/register", data={"username": "alice", "password": PASSWORD, "confirm": PASSWORD,
                                   "csrf_token": token_from("/register")})
    analysis_id = analysis_id_from(upload(client, benign_jpeg(), csrf_token=token_from("/analyses/new")))
    assert client.post(f"/analyses/{analysis_id}/outcome", data=OUTCOME).status_code == 400
    assert stored_outcome(app, analysis_id) is None
    token = token_from(f"/analyses/{analysis_id}")
    assert client.post(f"/analyses/{analysis_id}/outcome", data={**OUTCOME, "csrf_token": token}).status_code == 303
    assert stored_outcome(app, analysis_id)["diagnosis"] == "mel"


def test_outcomes_round_trip_through_the_api_as_json_or_form_fields(app, analysis_id):
    headers = {"Authorization": f"Bearer {token_for(app, 'alice')}"}
    api = app.test_client()
    assert api.get(f"/api/v1/analyses/{analysis_id}/outcome", headers=headers).json == {"outcome": None}
    stored = api.put(f"/api/v1/analyses/{analysis_id}/outcome", json=OUTCOME, headers=headers)
    assert stored.status_code == 200
    assert stored.json["outcome"] | {"recorded_at": None} == {
        "diagnosis": "mel", "diagnosis_name": "Melanoma", "group": "malignant", "source": "histopathology",
        "date": "2026-03-01", "note": "Breslow 0.4 mm", "recorded_at": None}
    corrected = api.put(f"/api/v1/analyses/{analysis_id}/outcome", headers=headers,
                        data={"diagnosis": "nv", "source": "follow_up"})
    assert corrected.json["outcome"]["diagnosis"] == "nv" and corrected.json["outcome"]["date"] is None
    assert api.get(f"/api/v1/analyses/{analysis_id}/outcome", headers=headers).json == corrected.json
    assert api.get(f"/api/v1/analyses/{analysis_id}", headers=headers).json["outcome"]["diagnosis"] == "nv"
    assert api.put(f"/api/v1/analyses/{analysis_id}/outcome", headers=headers, data="[1, 2]",
                   content_type="application/json").status_code == 422
    assert [e.detail for e in audit_actions(app, "outcome_recorded")] == ["API mel", "API nv"]
    assert any(e.detail == "API outcome" for e in audit_actions(app, "analysis_viewed"))


def test_another_users_outcome_is_neither_readable_nor_writable(app, client, auth, analysis_id):
    auth.logout()
    auth.register("mallory")
    assert client.post(f"/analyses/{analysis_id}/outcome", data=OUTCOME).status_code == 404
    headers = {"Authorization": f"Bearer {token_for(app, 'mallory')}"}
    api = app.test_client()
    assert api.put(f"/api/v1/analyses/{analysis_id}/outcome", json=OUTCOME, headers=headers).status_code == 404
    assert api.get(f"/api/v1/analyses/{analysis_id}/outcome", headers=headers).status_code == 404
    assert stored_outcome(app, analysis_id) is None


# A hand-worked set: (risk category, top class, uncertain, outcome).
HAND_WORKED = (
    [("urgent", "mel", False, "mel")] * 6            # melanomas referred on the melanoma pathway
    + [("review", "nv", True, "mel")] * 2             # uncertain melanomas, still referred
    + [("monitor", "nv", False, "mel")] * 2           # melanomas missed
    + [("keratinocyte", "bcc", False, "bcc")] * 5     # BCCs referred
    + [("monitor", "nv", False, "nv")] * 12           # benign, monitored
    + [("review", "nv", False, "nv")] * 3             # benign, referred
    + [("indeterminate", "nv", False, "mel")] * 1     # declined: left out of the figures
    + [("monitor", "nv", False, "not_excised")] * 4   # no diagnosis: left out
)


def hand_worked_records():
    return [{"risk_category": r, "top_class": t, "uncertain": u, "outcome": o} for r, t, u, o in HAND_WORKED]


def test_site_performance_gives_the_hand_computed_counts_and_intervals():
    result = outcomes.site_performance(hand_worked_records())
    assert result["outcomes"] == 35 and result["declined"] == 1 and result["uncertain"] == 2
    assert result["not_excised"] == 4
    # Malignant and assessed: 6 + 2 + 2 melanomas + 5 BCCs = 15, of which 13 referred.
    assert result["referral_sensitivity_malignant"]["successes"] == 13
    assert result["referral_sensitivity_malignant"]["total"] == 15
    # Melanomas: 8 of 10. Wilson 95%: (0.490, 0.943).
    melanoma = result["referral_sensitivity_melanoma"]
    assert (melanoma["successes"], melanoma["total"]) == (8, 10) and melanoma["value"] == 0.8
    assert melanoma["interval_95"] == pytest.approx((0.4902, 0.9433), abs=1e-4)
    # Benign: 12 monitored of 15.
    assert result["monitor_specificity"]["value"] == pytest.approx(0.8)
    assert result["by_risk_category"]["monitor"] == {"malignant": 2, "benign": 12, "unknown": 4}
    assert result["by_risk_category"]["indeterminate"] == {"malignant": 1, "benign": 0, "unknown": 0}
    matrix = result["confusion_matrix"]["counts"]
    mel, nv, bcc = (result["confusion_matrix"]["classes"].index(c) for c in ("mel", "nv", "bcc"))
    assert matrix[mel][mel] == 6 and matrix[mel][nv] == 4 and matrix[bcc][bcc] == 5 and matrix[nv][nv] == 15
    assert sum(map(sum, matrix)) == 30 and result["enough"] is True


def test_too_few_outcomes_are_said_plainly():
    result = outcomes.site_performance(hand_worked_records()[:10])
    assert result["enough"] is False


def test_wilson_intervals_at_the_edges():
    assert outcomes.wilson_interval(0, 0) is None
    assert outcomes.wilson_interval(0, 5)[0] == 0.0 and outcomes.wilson_interval(5, 5)[1] == 1.0
    assert outcomes.wilson_interval(5, 5)[0] == pytest.approx(0.5655, abs=1e-4)


def test_the_site_performance_page_and_api_use_only_the_clinicians_own_outcomes(app, client, auth):
    auth.register("alice")
    mine = analysis_id_from(upload(client, benign_jpeg()))
    client.post(f"/analyses/{mine}/outcome", data={"diagnosis": "nv", "source": "follow_up"})
    page = client.get("/site-performance").get_data(as_text=True)
    assert "Too few outcomes to say anything yet: 1 recorded" in page
    assert "Model card (HAM10000 validation" in page
    auth.logout()
    auth.register("bob")
    page = client.get("/site-performance").get_data(as_text=True)
    assert "Too few outcomes to say anything yet: 0 recorded" in page
    headers = {"Authorization": f"Bearer {token_for(app, 'alice')}"}
    body = app.test_client().get("/api/v1/site-performance", headers=headers).json
    assert body["site"]["outcomes"] == 1 and body["site"]["monitor_specificity"]["total"] in (0, 1)
    assert set(body["model_card"]) >= {"referral_sensitivity_malignant", "monitor_specificity"}
    assert len(audit_actions(app, "site_performance_viewed")) == 3


def test_the_model_card_figures_come_from_its_validation_counts():
    card = {"validation": {"n": 10, "risk_by_truth": {
        "malignant": {"urgent": 3, "keratinocyte": 1, "monitor": 1, "indeterminate": 5},
        "melanoma": {"urgent": 3, "monitor": 1},
        "benign": {"monitor": 4, "review": 1, "indeterminate": 2}}}}
    figures = outcomes.card_performance(card)
    assert figures["referral_sensitivity_malignant"]["value"] == pytest.approx(0.8)
    assert figures["referral_sensitivity_melanoma"]["value"] == pytest.approx(0.75)
    assert figures["monitor_specificity"]["value"] == pytest.approx(0.8)
    assert json.dumps(figures)  # plain data for the API


def test_an_outcome_whose_audit_event_cannot_be_written_is_not_stored(app, logged_in, analysis_id, monkeypatch):
    from dermalens import audit

    def refuse(*args, **kwargs):
        raise RuntimeError("audit trail unavailable")

    monkeypatch.setattr(audit, "record", refuse)
    response = logged_in.post(f"/analyses/{analysis_id}/outcome", data=OUTCOME)
    assert response.status_code == 500
    assert stored_outcome(app, analysis_id) is None
