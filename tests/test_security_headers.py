"""The kiosk page and the API tell the browser to run only the page's own files and to cache nothing private."""
from __future__ import annotations

import pytest

import api_server
from tests.fixtures.browser import dashboard_url

BROWSER_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@pytest.mark.parametrize("url", ["/", "/js/main.js", "/api/algorithms", "/api/health", "/api/nothing-here",
                                 "/no-such-page.js"])
def test_every_answer_carries_the_browser_hardening_headers(offline_client, url):
    response = offline_client.get(url)
    for name, value in BROWSER_HEADERS.items():
        assert response.headers[name] == value, (url, name)
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"   # no inline script or style
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("method,url", [("GET", "/api/algorithms"), ("GET", "/api/available-algorithms"),
                                        ("GET", "/api/algorithms/abc"), ("POST", "/api/validate-pin"),
                                        ("OPTIONS", "/api/algorithms"), ("GET", "/api/openapi.json")])
def test_api_answers_are_never_cached(offline_client, method, url):
    response = offline_client.open(url, method=method, json={} if method == "POST" else None)
    assert response.headers["Cache-Control"] == "no-store"


def test_page_files_are_revalidated_not_stored_forever(offline_client):
    assert offline_client.get("/").headers["Cache-Control"] == "no-cache"


@pytest.mark.browser
def test_the_real_page_runs_under_its_policy_and_refuses_injected_inline_script(market_hours, page_factory):
    """The shipped page works with the policy (no violation is logged), and an injected inline script does not run."""
    _day, api = market_hours
    page = page_factory(1280, 720)
    violations = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    response = page.goto(dashboard_url(api))
    assert response.headers["content-security-policy"] == api_server.CONTENT_SECURITY_POLICY
    page.wait_for_selector("#status-market:has-text('MARKET OPEN')")
    page.click("#add-button")                                       # dialogs and the PIN pad work too
    page.wait_for_selector("#pin-dialog", state="visible")
    page.click('#pin-keys [data-action="cancel"]')
    assert violations == []

    page.evaluate("""() => {
        const script = document.createElement('script');
        script.textContent = 'window.injected = true';
        document.body.append(script);
    }""")
    assert page.evaluate("window.injected === undefined")
    assert any("Content Security Policy" in text for text in violations)
    watch = page.console_watch                                      # the refusal logged is the expected one
    watch.errors = [e for e in watch.errors if "Content Security Policy" not in e]
