"""Accounts: register, sign in with one generic failure message, sign out by POST, safe `next`."""

import pytest

from dermalens.views.auth import LOGIN_FAILED, is_safe_next
from tests.helpers import PASSWORD, make_app, user_count


def test_register_signs_the_new_user_in(client, auth, app):
    response = auth.register("carol")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/analyses/new")
    assert client.get("/analyses/new").status_code == 200
    assert user_count(app) == 1


def test_register_refuses_a_taken_username(auth, app):
    auth.register("carol")
    auth.logout()
    response = auth.register("carol")
    assert response.status_code == 400
    assert b"already taken" in response.data
    assert user_count(app) == 1


@pytest.mark.parametrize("username, password, confirm, message", [
    ("ab", PASSWORD, PASSWORD, b"A username has 3 to 64 characters."),
    ("bad name!", PASSWORD, PASSWORD, b"letters, digits"),
    ("dave", "short", "short", b"A password needs at least 10 characters"),
    ("dave", "", "", b"Choose a password."),
    ("dave", PASSWORD, PASSWORD + "x", b"do not match"),
])
def test_register_validates_fields_in_plain_words_and_focuses_the_field(client, app, username, password,
                                                                       confirm, message):
    response = client.post("/register", data={"username": username, "password": password,
                                              "confirm": confirm})
    assert response.status_code == 400
    assert message in response.data
    assert b"Field must be" not in response.data  # never WTForms' generic wording
    assert response.data.count(b"autofocus") == 1 and b'aria-invalid="true"' in response.data
    assert user_count(app) == 0


def test_password_is_stored_as_scrypt_hash(auth, app):
    auth.register("erin")
    from dermalens.extensions import db
    from dermalens.records import User

    with app.app_context():
        stored = db.session.query(User).one().password_hash
    assert stored.startswith("scrypt:") and PASSWORD not in stored


def test_long_passphrase_is_accepted(client, auth):
    passphrase = "a very long clinical passphrase " * 4  # 128 characters
    assert auth.register("frank", passphrase).status_code == 302
    auth.logout()
    assert auth.login("frank", passphrase).status_code == 302


def test_login_and_logout(client, auth):
    auth.register()
    auth.logout()
    assert client.get("/history").status_code == 302
    assert auth.login().status_code == 302
    assert client.get("/history").status_code == 200
    response = auth.logout()
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert client.get("/history").status_code == 302


def test_wrong_username_and_wrong_password_look_the_same(client, auth):
    auth.register()
    auth.logout()
    wrong_password = auth.login("alice", "not the password at all")
    wrong_user = auth.login("nobody", PASSWORD)
    assert wrong_password.status_code == wrong_user.status_code == 401
    assert LOGIN_FAILED.encode() in wrong_password.data
    assert LOGIN_FAILED.encode() in wrong_user.data


def test_logout_by_get_is_not_allowed(logged_in):
    assert logged_in.get("/logout").status_code == 405


@pytest.mark.parametrize("target", ["https://evil.com", "//evil.com", "/\\evil.com", "https:evil.com",
                                    "javascript:alert(1)", "evil.com", ""])
def test_login_ignores_offsite_next(client, auth, target):
    auth.register()
    auth.logout()
    response = client.post(f"/login?next={target}", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/analyses/new"


def test_login_follows_onsite_next(client, auth):
    auth.register()
    auth.logout()
    response = client.post("/login?next=/history%3Frisk%3Durgent",
                           data={"username": "alice", "password": PASSWORD})
    assert response.headers["Location"] == "/history?risk=urgent"


@pytest.mark.parametrize("target, safe", [("/history", True), ("/analyses/abc?x=1", True),
                                          ("//evil.com", False), ("/\\evil.com", False), ("/\tevil", False),
                                          ("http://evil.com/", False), (None, False)])
def test_is_safe_next(target, safe):
    assert is_safe_next(target) is safe


def test_repeated_failed_logins_are_rate_limited_even_with_forged_forwarding(tmp_path):
    app = make_app(tmp_path, RATELIMIT_ENABLED=True, LOGIN_ADDRESS_RATE_LIMIT="3 per minute")
    client = app.test_client()
    statuses = [client.post("/login", data={"username": f"x{i}", "password": "y"},
                            headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code for i in range(5)]
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3:] == [429, 429]


def test_one_accounts_failed_sign_ins_do_not_lock_out_colleagues_at_the_same_address(tmp_path):
    app = make_app(tmp_path, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    client.post("/register", data={"username": "bob", "password": PASSWORD, "confirm": PASSWORD})
    client.post("/logout")
    guessed = [client.post("/login", data={"username": name, "password": "wrong guess"}).status_code
               for name in ("alice", "ALICE", "alice ", "alice")]
    assert guessed == [401, 401, 401, 429]  # one account, however it is spelt
    colleague = client.post("/login", data={"username": "bob", "password": PASSWORD})
    assert colleague.status_code == 302


def test_tampered_session_cookie_is_anonymous(client, auth):
    auth.register()
    cookie = client.get_cookie("session")
    client.set_cookie("session", cookie.value[:-4] + "AAAA")
    assert client.get("/history").status_code == 302
