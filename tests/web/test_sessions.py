"""Sessions end when they should: sign-out, password change, an operator's reset or disable,
idle and absolute timeouts; and no account can ever inherit another's session or trail."""

import time

import pytest
from sqlalchemy import text

from dermalens.extensions import db
from dermalens.records import User
from tests.helpers import PASSWORD, Auth, token_for

NEW_PASSWORD = "a brand new passphrase 42"


def copied_session(app, client):
    """A second browser holding a copy of `client`'s session cookie."""
    cookie = client.get_cookie("session")
    thief = app.test_client()
    thief.set_cookie("session", cookie.value)
    return thief


def signed_in(client) -> bool:
    return client.get("/account").status_code == 200


def test_a_copied_session_cookie_stops_working_at_sign_out(app, logged_in):
    thief = copied_session(app, logged_in)
    assert signed_in(thief)
    Auth(logged_in).logout()
    assert not signed_in(thief)
    assert thief.post("/account/tokens", data={"name": "stolen"}).status_code == 302  # to sign-in
    with app.app_context():
        assert db.session.execute(text("select count(*) from api_tokens")).scalar() == 0


def test_changing_the_password_ends_other_sessions_but_not_this_one(app, logged_in):
    thief = copied_session(app, logged_in)
    response = logged_in.post("/account/password", data={"current": PASSWORD, "password": NEW_PASSWORD,
                                                          "confirm": NEW_PASSWORD})
    assert response.status_code == 303
    assert signed_in(logged_in) and not signed_in(thief)
    Auth(logged_in).logout()
    assert Auth(logged_in).login(password=PASSWORD).status_code == 401
    assert Auth(logged_in).login(password=NEW_PASSWORD).status_code == 302


@pytest.mark.parametrize("fields, message", [
    ({"current": "not my password", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
     b"current password is not correct"),
    ({"current": PASSWORD, "password": "short", "confirm": "short"}, b"needs at least 10 characters"),
    ({"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"}, b"do not match"),
])
def test_a_refused_password_change_changes_nothing(app, logged_in, fields, message):
    thief = copied_session(app, logged_in)
    response = logged_in.post("/account/password", data=fields)
    assert response.status_code == 400 and message in response.data
    assert signed_in(thief)
    Auth(logged_in).logout()
    assert Auth(logged_in).login(password=PASSWORD).status_code == 302


def test_an_operator_password_reset_ends_every_session(app, logged_in, runner):
    result = runner.invoke(args=["users", "reset-password", "ALICE", "--password-stdin"],
                           input=NEW_PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert not signed_in(logged_in)
    assert Auth(logged_in).login(password=NEW_PASSWORD).status_code == 302


def test_a_disabled_account_cannot_sign_in_or_use_its_tokens(app, logged_in, runner):
    token = token_for(app, "alice")
    headers = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/v1/analyses", headers=headers).status_code == 200
    assert runner.invoke(args=["users", "disable", "alice"]).exit_code == 0
    assert not signed_in(logged_in)
    assert Auth(logged_in).login().status_code == 401
    assert app.test_client().get("/api/v1/analyses", headers=headers).status_code == 401
    assert runner.invoke(args=["users", "enable", "alice"]).exit_code == 0
    assert Auth(logged_in).login().status_code == 302


def test_operator_commands_name_an_unknown_user(runner):
    result = runner.invoke(args=["users", "disable", "nobody"])
    assert result.exit_code != 0 and "No user named nobody" in result.output


@pytest.mark.parametrize("clock, limit", [("seen_at", "SESSION_IDLE_MINUTES"),
                                          ("signed_in_at", "SESSION_MAX_HOURS")])
def test_sessions_time_out(app, logged_in, clock, limit):
    seconds = app.config[limit] * (60 if limit.endswith("MINUTES") else 3600)
    with logged_in.session_transaction() as session:
        session[clock] = int(time.time()) - seconds - 5
    response = logged_in.get("/history")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert not signed_in(logged_in)


def test_an_active_session_is_kept(app, logged_in):
    with logged_in.session_transaction() as session:
        session["seen_at"] = int(time.time()) - 60 * (app.config["SESSION_IDLE_MINUTES"] - 1)
    assert signed_in(logged_in)
    with logged_in.session_transaction() as session:
        assert time.time() - session["seen_at"] < 5  # the idle clock restarted


def test_user_ids_are_never_reused_and_an_old_cookie_signs_in_nobody(app, client):
    auth = Auth(client)
    auth.register("bob")
    old_cookie = client.get_cookie("session").value
    with app.app_context():
        bob = db.session.query(User).filter_by(username="bob").one()
        bob_id = bob.id
        db.session.delete(bob)
        db.session.commit()
    newcomer = app.test_client()
    Auth(newcomer).register("carol")
    with app.app_context():
        assert db.session.query(User).filter_by(username="carol").one().id > bob_id
    stale = app.test_client()
    stale.set_cookie("session", old_cookie)
    assert not signed_in(stale)


@pytest.mark.parametrize("other", ["ALICE", "Alice", " alice "])
def test_usernames_differing_only_in_case_are_one_account(app, logged_in, other):
    newcomer = app.test_client()
    response = Auth(newcomer).register(other.strip())
    assert response.status_code == 400 and b"already taken" in response.data
    assert Auth(newcomer).login(other).status_code == 302
