"""Access control: anonymous users are sent to sign in; nobody sees another clinician's records."""

import re

import pytest

from tests.helpers import row_count, stored_files, token_for, upload
from tests.images import lesion_jpeg

PUBLIC_ENDPOINTS = {"static", "favicon", "auth.login", "auth.register", "api.health", "api.info", "api.openapi"}


def protected_urls(app, public_id="abcdefghijklmnopqrstuv"):
    """Every (method, url) of the URL map that is not public, with a sample analysis id."""
    urls = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        url = rule.rule.replace("<public_id>", public_id)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            urls.append((method, url))
    return urls


def test_every_non_public_url_is_covered(app):
    # Guard against new routes silently escaping the parametrized tests below.
    assert len(protected_urls(app)) >= 11


def test_anonymous_users_are_sent_to_sign_in_or_get_401_json_everywhere(app, client):
    for method, url in protected_urls(app):
        response = client.open(url, method=method)
        if url.startswith("/api/"):
            assert response.status_code == 401, (method, url)
            assert response.json["error"]["code"] == 401
        else:
            assert response.status_code == 302, (method, url)
            assert "/login" in response.headers["Location"], (method, url)


@pytest.mark.parametrize("url", ["/api/health", "/api/info", "/api/v1/openapi.json"])
def test_public_api_documents_need_no_token(client, url):
    assert client.get(url).status_code == 200


ANALYSIS_URLS = [
    ("GET", "/analyses/{id}"),
    ("GET", "/analyses/{id}/image"),
    ("GET", "/analyses/{id}/heatmap"),
    ("GET", "/analyses/{id}/report.pdf"),
    ("GET", "/analyses/{id}/confirm-delete"),
    ("POST", "/analyses/{id}/delete"),
    ("GET", "/api/v1/analyses/{id}"),
    ("DELETE", "/api/v1/analyses/{id}"),
    ("GET", "/api/v1/analyses/{id}/image"),
    ("GET", "/api/v1/analyses/{id}/heatmap"),
    ("GET", "/api/v1/analyses/{id}/report.pdf"),
    ("POST", "/analyses/{id}/outcome"),
    ("GET", "/api/v1/analyses/{id}/outcome"),
    ("PUT", "/api/v1/analyses/{id}/outcome"),
]


def test_analysis_urls_list_is_complete(app):
    listed = {url.format(id="X") for _, url in ANALYSIS_URLS}
    in_map = {rule.rule.replace("<public_id>", "X") for rule in app.url_map.iter_rules()
              if "<public_id>" in rule.rule and not rule.rule.startswith("/account/")}
    assert in_map <= listed


@pytest.mark.parametrize("method, url", ANALYSIS_URLS)
def test_other_users_get_404_for_every_url_of_an_analysis(app, client, auth, analysis_id, method, url):
    files_before = stored_files(app)
    auth.logout()
    auth.register("mallory")
    headers = {"Authorization": f"Bearer {token_for(app, 'mallory')}"} if url.startswith("/api/") else {}
    response = client.open(url.format(id=analysis_id), method=method, headers=headers)
    assert response.status_code == 404
    assert row_count(app) == 1 and stored_files(app) == files_before
    auth.logout()
    auth.login("alice")
    assert client.get(f"/analyses/{analysis_id}").status_code == 200


def test_history_lists_only_own_analyses(client, auth, analysis_id):
    auth.logout()
    auth.register("mallory")
    upload(client, lesion_jpeg(seed=3), patient_ref="MINE-1")
    page = client.get("/history").get_data(as_text=True)
    assert "MINE-1" in page and "PT-001" not in page and analysis_id not in page
    filtered = client.get("/history?patient_ref=PT").get_data(as_text=True)
    assert not re.search(r"/analyses/[A-Za-z0-9_-]{20,}", filtered)


def test_public_ids_are_random_not_row_numbers(logged_in, analysis_id):
    assert len(analysis_id) >= 20
    assert logged_in.get("/analyses/1").status_code == 404
