"""Every answer is JSON (never an HTML page or a traceback), no CORS, and the kiosk page is served fresh."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import api_server
from shared.config import ApiSettings

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("method,url,status", [
    ("GET", "/api/nothing-here", 404),
    ("POST", "/api/nothing-here", 404),
    ("GET", "/api/algorithms/abc", 404),
    ("GET", "/no-such-page.js", 404),
    ("PUT", "/api/algorithms", 405),
    ("PATCH", "/api/algorithms/1", 405),
    ("DELETE", "/api/account/cash", 405),
    ("GET", "/api/validate-pin", 405),
    ("POST", "/api/health", 405),
])
def test_http_errors_are_json(offline_client, method, url, status):
    response = offline_client.open(url, method=method)
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert set(response.get_json()) == {"error"} and response.get_json()["error"]
    assert b"<" not in response.data


def test_405_names_the_allowed_methods(offline_client):
    response = offline_client.put("/api/algorithms", json={})
    assert response.get_json() == {"error": "method not allowed"}
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}


def test_a_body_over_16_kib_is_413(offline_client):
    response = offline_client.post("/api/validate-pin", json={"pin": "1" * 20_000})
    assert response.status_code == 413 and response.get_json()["error"] == "request body too large"


def test_pin_request_must_be_json(offline_client):
    form = offline_client.post("/api/validate-pin", data={"pin": "2020"})
    assert form.status_code == 415 and "application/json" in form.get_json()["error"]
    broken = offline_client.post("/api/validate-pin", data="{pin: 2020}", content_type="application/json")
    assert broken.status_code == 400 and broken.get_json()["error"].startswith("malformed JSON body")


def test_an_unexpected_failure_is_a_json_500_without_a_traceback(api_factory, caplog):
    app = api_factory()

    @app.get("/api/explode")
    def explode():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/api/explode")
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal server error; see the API log"}
    assert "secret internals" in caplog.text and "Traceback" in caplog.text


def test_a_missing_database_is_a_503_with_the_fix(api_factory, tmp_path):
    client = api_factory(SYSTEM_DB=tmp_path / "gone.db").test_client()
    response = client.get("/api/algorithms")
    assert response.status_code == 503
    assert "python -m system_databse.create_system_db" in response.get_json()["error"]


def test_options_answers_only_the_allowed_methods(offline_client):
    response = offline_client.options("/api/algorithms")
    assert response.status_code == 204 and response.data == b"" and "Content-Type" not in response.headers
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}


def test_no_cors_is_granted(offline_client):
    preflight = offline_client.options("/api/algorithms", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    plain = offline_client.get("/api/algorithms", headers={"Origin": "http://evil.example"})
    for response in (preflight, plain):
        assert not any(h.lower().startswith("access-control-") for h in response.headers.keys())


def test_json_answers_are_not_cached_and_not_sniffed(offline_client):
    response = offline_client.get("/api/algorithms")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_trusted_hosts_refuse_a_rebound_domain(api_factory):
    client = api_factory(TRUSTED_HOSTS=api_server.trusted_hosts(ApiSettings("127.0.0.1", 5000))).test_client()
    assert client.get("/api/algorithms", headers={"Host": "127.0.0.1:5000"}).status_code == 200
    assert client.get("/api/algorithms", headers={"Host": "localhost"}).status_code == 200
    evil = client.get("/api/algorithms", headers={"Host": "attacker.example:5000"})
    assert evil.status_code == 400 and evil.is_json


def test_a_server_bound_to_another_loopback_address_answers_it(api_factory):
    """Debian and Pi OS resolve their own host name to 127.0.1.1."""
    client = api_factory(TRUSTED_HOSTS=api_server.trusted_hosts(ApiSettings("127.0.1.1", 5000))).test_client()
    assert client.get("/api/algorithms", headers={"Host": "127.0.1.1:5000"}).status_code == 200
    assert client.get("/api/algorithms", headers={"Host": "attacker.example"}).status_code == 400


def test_ipv6_and_network_bindings_run_without_the_host_check():
    assert api_server.trusted_hosts(ApiSettings("::1", 5000)) is None
    assert api_server.trusted_hosts(ApiSettings("0.0.0.0", 5000)) is None


# --------------------------------------------------------------------------- the kiosk page


def test_index_is_served_at_root_and_revalidated(offline_client, frontend_dir):
    response = offline_client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.get_data(as_text=True) == (frontend_dir / "index.html").read_text()
    assert response.headers["Cache-Control"] == "no-cache"
    etag = response.headers["ETag"]
    again = offline_client.get("/", headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_page_files_are_served_with_their_types(offline_client):
    script = offline_client.get("/js/main.js")
    assert script.status_code == 200 and script.mimetype in ("text/javascript", "application/javascript")
    assert script.get_data(as_text=True) == "export const answer = 42;\n"
    assert script.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("url", ["/../system.db", "/js/../../system.db", "/%2e%2e/system.db", "/js/"])
def test_nothing_outside_the_page_folder_is_served(offline_client, url):
    response = offline_client.get(url)
    assert response.status_code == 404 and response.is_json


def test_no_page_installed_is_a_json_404(api_factory, tmp_path):
    response = api_factory(FRONTEND_DIR=tmp_path / "empty").test_client().get("/")
    assert response.status_code == 404 and response.is_json


def test_the_repository_dashboard_is_what_root_serves(api_factory):
    client = api_factory(FRONTEND_DIR=REPO / "frontend").test_client()
    response = client.get("/")
    assert response.status_code == 200
    assert response.get_data() == (REPO / "frontend" / "index.html").read_bytes()


def test_importing_the_server_starts_nothing():
    code = ("import threading, api_server; app = api_server.create_app(); "
            "print(threading.active_count(), type(app).__name__)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "Flask"]
