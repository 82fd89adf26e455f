"""Authentication of lakefs_server: basic auth, token login (Bearer and cookie), 401s."""
import requests


def test_requests_without_or_with_bad_credentials_get_401(server):
    for auth in (None, ("AKIAIOSFODNN7EXAMPLE", "wrong"), ("nobody", "x")):
        resp = requests.get(server.api_url + "/repositories", auth=auth)
        assert resp.status_code == 401
        assert resp.json() == {"message": "error authenticating request"}
    resp = requests.get(server.api_url + "/user", headers={"Authorization": "Bearer not.a.token"})
    assert resp.status_code == 401
    assert requests.get(server.api_url + "/healthcheck").status_code == 204


def test_basic_auth_and_current_user(server):
    resp = server.api("GET", "/user")
    assert resp.status_code == 200 and resp.json()["user"]["id"] == "admin"
    assert isinstance(resp.json()["user"]["creation_date"], int)


def test_login_token_works_as_bearer_and_cookie(server):
    resp = requests.post(server.api_url + "/auth/login", json={
        "access_key_id": server.access_key_id, "secret_access_key": server.secret_access_key})
    assert resp.status_code == 200, resp.text
    token = resp.json()["token"]
    assert resp.json()["token_expiration"] > 0
    assert "internal_auth_session=" in resp.headers["Set-Cookie"]
    bearer = requests.get(server.api_url + "/repositories", headers={"Authorization": "Bearer " + token})
    assert bearer.status_code == 200
    cookie = requests.get(server.api_url + "/user", cookies={"internal_auth_session": token})
    assert cookie.status_code == 200 and cookie.json()["user"]["id"] == "admin"
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert requests.get(server.api_url + "/user",
                        headers={"Authorization": "Bearer " + tampered}).status_code == 401
    bad = requests.post(server.api_url + "/auth/login",
                        json={"access_key_id": server.access_key_id, "secret_access_key": "nope"})
    assert bad.status_code == 401 and bad.json()["message"]


def test_config_reports_presign_support(server):
    cfg = server.api("GET", "/config").json()
    assert cfg["version_config"]["version"].startswith("1.84")
    assert cfg["storage_config"]["pre_sign_support"] is True
    assert cfg["storage_config"]["pre_sign_multipart_upload"] is True
    assert requests.get(server.api_url + "/config").status_code == 401
