"""The JSON API: tokens, analyses, reports, errors, and agreement with the OpenAPI document."""

import io
import re

import pytest

from dermalens.extensions import db
from dermalens.lesions import CLASSES
from dermalens.records import ApiToken
from tests.helpers import ON_POSTGRESQL, make_app, row_count, stored_files, token_for
from tests.images import benign_jpeg, lesion_array, encode, malignant_jpeg


@pytest.fixture
def api(app, auth):
    """A test client plus bearer headers for user "alice"."""
    auth.register()
    auth.logout()  # the API must work without any session cookie
    return app.test_client(), {"Authorization": f"Bearer {token_for(app, 'alice')}"}


def post_analysis(client, headers, image=None, **fields):
    data = dict(fields)
    if image is not None:
        data["image"] = (io.BytesIO(image), "lesion.jpg")
    return client.post("/api/v1/analyses", data=data, headers=headers, content_type="multipart/form-data")


def test_create_returns_the_full_analysis(app, api):
    client, headers = api
    response = post_analysis(client, headers, malignant_jpeg(), patient_ref="EHR-9", age="61",
                             sex="male", site="back")
    assert response.status_code == 201
    body = response.json
    assert response.headers["Location"].endswith(f"/api/v1/analyses/{body['id']}")
    assert set(body["probabilities"]) == set(CLASSES)
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert body["top_class"] == "mel" and body["risk"]["category"] == "urgent"
    assert body["risk"]["action"] and body["indeterminate"] is False
    assert body["inputs"]["patient_ref"] == "EHR-9" and body["inputs"]["age"] == 61
    assert body["model"] == {"name": "fake-resnet", "version": "0.0-test", "sha256": "f" * 64}
    for key in ("self", "image", "heatmap", "report"):
        assert client.get(body["urls"][key], headers=headers).status_code == 200
    assert "not a diagnosis" in body["disclaimer"]
    assert row_count(app) == 1


def test_get_list_and_delete(app, api):
    client, headers = api
    first = post_analysis(client, headers, benign_jpeg(), patient_ref="A-1").json
    second = post_analysis(client, headers, malignant_jpeg(), patient_ref="B-2").json
    listing = client.get("/api/v1/analyses", headers=headers).json
    assert [item["id"] for item in listing["items"]] == [second["id"], first["id"]]
    assert listing["total"] == 2 and listing["page"] == 1
    assert client.get(f"/api/v1/analyses/{first['id']}", headers=headers).json == first
    filtered = client.get("/api/v1/analyses?risk=urgent", headers=headers).json
    assert [item["id"] for item in filtered["items"]] == [second["id"]]
    assert client.delete(f"/api/v1/analyses/{first['id']}", headers=headers).status_code == 204
    assert client.get(f"/api/v1/analyses/{first['id']}", headers=headers).status_code == 404
    assert row_count(app) == 1 and len(stored_files(app)) == 2


def test_files_and_report(api):
    client, headers = api
    analysis = post_analysis(client, headers, benign_jpeg(), patient_ref="PDF-1").json
    image = client.get(f"/api/v1/analyses/{analysis['id']}/image", headers=headers)
    heatmap = client.get(f"/api/v1/analyses/{analysis['id']}/heatmap", headers=headers)
    report = client.get(f"/api/v1/analyses/{analysis['id']}/report.pdf?paper=letter", headers=headers)
    assert image.mimetype == "image/jpeg" and heatmap.mimetype == "image/jpeg"
    assert heatmap.data.startswith(b"\xff\xd8\xff")
    assert report.data.startswith(b"%PDF-") and report.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("per_page, expected", [(1, 1), (100, 100), (1000, 100)])
def test_page_size_is_clamped(api, per_page, expected):
    client, headers = api
    assert client.get(f"/api/v1/analyses?per_page={per_page}", headers=headers).json["per_page"] == expected


@pytest.mark.parametrize("query", ["page=0", "page=-1", "per_page=0", "page=abc", "risk=bad",
                                   "date_from=31/12/2026"])
def test_bad_listing_parameters_are_400(api, query):
    client, headers = api
    response = client.get(f"/api/v1/analyses?{query}", headers=headers)
    assert response.status_code == 400 and "message" in response.json["error"]


def test_pagination_walks_every_item_once(api):
    client, headers = api
    ids = {post_analysis(client, headers, benign_jpeg()).json["id"] for _ in range(5)}
    seen = []
    for page in (1, 2, 3):
        seen += [item["id"] for item in client.get(f"/api/v1/analyses?per_page=2&page={page}",
                                                     headers=headers).json["items"]]
    assert sorted(seen) == sorted(ids)
    assert client.get("/api/v1/analyses?per_page=2&page=4", headers=headers).json["items"] == []


@pytest.mark.parametrize("fields, image, status", [
    ({}, None, 400),
    ({}, b"", 400),
    ({}, b"%PDF-1.4 not an image", 415),
    ({}, encode(lesion_array(), "GIF"), 415),
    ({"age": "-3"}, benign_jpeg(), 422),
    ({"sex": "x"}, benign_jpeg(), 422),
    ({"site": "elbow"}, benign_jpeg(), 422),
])
def test_create_errors_are_json_with_the_right_status(app, api, fields, image, status):
    client, headers = api
    response = post_analysis(client, headers, image, **fields)
    assert response.status_code == status
    assert response.json["error"]["code"] == status and response.json["error"]["message"]
    assert row_count(app) == 0 and stored_files(app) == []


def test_413_405_404_are_json(tmp_path):
    app = make_app(tmp_path, MAX_CONTENT_LENGTH=10_000)
    client = app.test_client()
    client.post("/register", data={"username": "alice", "password": "p" * 12, "confirm": "p" * 12})
    headers = {"Authorization": f"Bearer {token_for(app, 'alice')}"}
    too_big = post_analysis(client, headers, b"\xff\xd8\xff" + b"0" * 20_000)
    assert too_big.status_code == 413 and too_big.json["error"]["code"] == 413
    assert client.put("/api/v1/analyses", headers=headers).json["error"]["code"] == 405
    assert client.get("/api/v1/nothing", headers=headers).json["error"]["code"] == 404


def test_500_is_json_without_a_stack_trace(tmp_path):
    from tests.fakes import FakeClassifier

    app = make_app(tmp_path, CLASSIFIER=FakeClassifier(fail=True))
    client = app.test_client()
    client.post("/register", data={"username": "alice", "password": "p" * 12, "confirm": "p" * 12})
    headers = {"Authorization": f"Bearer {token_for(app, 'alice')}"}
    response = post_analysis(client, headers, benign_jpeg())
    assert response.status_code == 500 and response.json["error"]["code"] == 500
    assert "Traceback" not in response.get_data(as_text=True)
    assert row_count(app) == 0 and stored_files(app) == []


def test_analysis_creation_is_rate_limited(tmp_path):
    app = make_app(tmp_path, RATELIMIT_ENABLED=True, ANALYSIS_RATE_LIMIT="2 per minute")
    client = app.test_client()
    client.post("/register", data={"username": "alice", "password": "p" * 12, "confirm": "p" * 12})
    headers = {"Authorization": f"Bearer {token_for(app, 'alice')}"}
    statuses = [post_analysis(client, headers, benign_jpeg()).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer dl_wrong", "Basic abc", "Bearer " + "x" * 500])
def test_missing_or_invalid_tokens_get_401(api, header):
    client, _ = api
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/analyses", headers=headers)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")


def test_session_cookie_does_not_authenticate_the_api(logged_in):
    assert logged_in.get("/api/v1/analyses").status_code == 401


def test_token_lifecycle_on_the_account_page(app, logged_in):
    created = logged_in.post("/account/tokens", data={"name": "workstation 2"})
    assert created.status_code == 303 and created.headers["Location"].startswith("/account")
    shown = logged_in.get("/account").get_data(as_text=True)
    token = re.search(r'id="new-token" value="(dl_[^"]+)"', shown).group(1)
    assert 'data-copy="new-token"' in shown  # the copy button
    headers = {"Authorization": f"Bearer {token}"}
    api_client = app.test_client()
    assert api_client.get("/api/v1/analyses", headers=headers).status_code == 200

    page = logged_in.get("/account").get_data(as_text=True)  # a reload
    assert "workstation 2" in page and token not in page  # shown once only
    with app.app_context():
        assert db.session.query(ApiToken).count() == 1  # and the reload created none
    token_id = re.search(r"/account/tokens/([A-Za-z0-9_-]+)/confirm-revoke", page).group(1)
    confirm = logged_in.get(f"/account/tokens/{token_id}/confirm-revoke")
    assert confirm.status_code == 200 and "workstation 2" in confirm.get_data(as_text=True)
    assert api_client.get("/api/v1/analyses", headers=headers).status_code == 200  # asking changed nothing
    assert logged_in.post(f"/account/tokens/{token_id}/revoke").status_code == 303
    assert api_client.get("/api/v1/analyses", headers=headers).status_code == 401
    assert "revoked" in logged_in.get("/account").get_data(as_text=True)
    assert logged_in.get(f"/account/tokens/{token_id}/confirm-revoke").status_code == 404


def test_tokens_are_stored_only_as_hashes(app, api):
    from dermalens.extensions import db
    from dermalens.records import ApiToken

    _, headers = api
    token = headers["Authorization"].split()[1]
    with app.app_context():
        stored = db.session.query(ApiToken).one()
        assert token not in (stored.token_hash, stored.prefix) and len(stored.token_hash) == 64


def test_users_cannot_revoke_each_others_tokens(app, client, auth):
    auth.register("alice")
    client.post("/account/tokens", data={"name": "alice's"})
    page = client.get("/account").get_data(as_text=True)
    token_id = re.search(r"/account/tokens/([A-Za-z0-9_-]+)/confirm-revoke", page).group(1)
    auth.logout()
    auth.register("mallory")
    assert client.get(f"/account/tokens/{token_id}/confirm-revoke").status_code == 404
    assert client.post(f"/account/tokens/{token_id}/revoke").status_code == 404


def test_token_name_is_required(logged_in):
    assert logged_in.post("/account/tokens", data={"name": " "}).status_code == 400


def test_create_token_command_prints_only_the_token(app, runner, auth):
    auth.register("ops")
    result = runner.invoke(args=["create-token", "ops", "--name", "pacs"])
    assert result.exit_code == 0
    token = result.output.strip()
    assert re.fullmatch(r"dl_[A-Za-z0-9_-]{40,}", token)
    assert app.test_client().get("/api/v1/analyses", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert runner.invoke(args=["create-token", "nobody"]).exit_code != 0


def test_health_and_info(client):
    health = client.get("/api/health").json
    assert {key: health[key] for key in ("status", "problems", "model_loaded", "model_version", "device",
                                         "database", "database_writable", "storage_writable")} == {
        "status": "ok", "problems": [], "model_loaded": True, "model_version": "0.0-test",
        "device": "CPU", "database": True, "database_writable": True, "storage_writable": True}
    assert health["storage_free_mb"] > 0
    # (A PostgreSQL server's disk is its own: the app cannot probe it.)
    assert health["database_free_mb"] is None if ON_POSTGRESQL else health["database_free_mb"] > 0
    assert health["schema_current"] is True
    info = client.get("/api/info").json
    assert [c["code"] for c in info["classes"]] == list(CLASSES)
    assert info["thresholds"] and info["input_size"] == 32


def test_openapi_document_matches_the_routes(app, client):
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    implemented = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
            implemented |= {(path, method) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == implemented
