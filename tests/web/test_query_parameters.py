"""Every query parameter of the history and the API listing is validated: a hostile value gets a
4xx with a message, never a 500 (issue 26, item 11). The history has a fixed page size and
ignores `per_page`."""

import pytest

from tests.helpers import token_for

HOSTILE = ["date_to=9999-12-31", "date_from=0001-01-01", "page=9223372036854775807", "page=100001",
           "page=%C2%B2", "per_page=%C2%B2", "page=1e3", "per_page=-5", "page=%EF%BC%91"]


@pytest.mark.parametrize("query", [query for query in HOSTILE if not query.startswith("per_page")])
def test_the_history_refuses_a_hostile_query_with_a_message(logged_in, analysis_id, query):
    response = logged_in.get(f"/history?{query}")
    assert response.status_code == 400, query
    assert 'role="alert"' in response.get_data(as_text=True)


@pytest.mark.parametrize("query", HOSTILE)
def test_the_api_listing_refuses_a_hostile_query_with_a_message(app, analysis_id, query):
    headers = {"Authorization": f"Bearer {token_for(app, 'alice')}"}
    response = app.test_client().get(f"/api/v1/analyses?{query}", headers=headers)
    assert response.status_code == 400, query
    assert response.json["error"]["message"]


@pytest.mark.parametrize("query", ["date_to=9998-12-31", "page=100000", "per_page=100000", "page="])
def test_values_at_the_limits_are_answered(app, logged_in, analysis_id, query):
    # (A page past the last is a 404 page that says how many there are: see test_history.)
    assert logged_in.get(f"/history?{query}").status_code == (404 if query == "page=100000" else 200)
    headers = {"Authorization": f"Bearer {token_for(app, 'alice')}"}
    assert app.test_client().get(f"/api/v1/analyses?{query}", headers=headers).status_code == 200
