"""Onboarding as a new user lives it (issue 9, item 6): an admin creates a user, the invite goes out
through a real SMTP server (aiosmtpd), the link opens the API's own set-password page in headless
Chromium, the user sets a password and lands on the frontend's login, and that password logs in
through `POST /auth/login`. The rest of the file checks the page without a browser."""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from werkzeug.serving import make_server

from app import create_app, db, runtime
from app.config import Settings
from app.features.auth import service as auth_service
from app.features.identity.models import User
from tests.conftest import wait_for
from tests.email_helpers import smtp_server  # noqa: F401  (fixture)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@dataclass
class FrontendStub:
    """Stands in for the web frontend: records what reaches it (the redirect after the form)."""

    server: ThreadingHTTPServer
    seen: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def frontend() -> Iterator[FrontendStub]:
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
            body = b"<!doctype html><title>Valorize login</title><h1>Login</h1>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stub = FrontendStub(server, seen)
    yield stub
    server.shutdown()
    server.server_close()


@dataclass
class LiveApi:
    url: str
    app: Any


@pytest.fixture
def live_api(settings: Settings, smtp_server: Any, frontend: FrontendStub) -> Iterator[LiveApi]:  # noqa: F811
    """The API on a real port, its PUBLIC_API_URL that port, mail to aiosmtpd, FRONTEND_URL the stub."""
    with _free_socket() as port:
        pass
    url = f"http://127.0.0.1:{port}"
    runtime.init(
        replace(
            settings,
            smtp_url=smtp_server.url,
            public_api_url=url,
            frontend_url=frontend.url,
            email_rate_per_minute=100_000,
        )
    )
    app = create_app(runtime.settings())
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LiveApi(url, app)
    server.shutdown()
    runtime.init(settings)


class _free_socket:
    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: Any) -> None:
        self.sock.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed "
            "(apt-get install -y chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="valorize-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "pt-BR,pt"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.slow
def test_an_invited_user_sets_a_password_in_chromium_and_logs_in(
    live_api,
    frontend,
    smtp_server,  # noqa: F811
    browser,
    make_tenant,
    worker,
):
    from selenium.webdriver.common.by import By

    tenant = make_tenant()
    client = live_api.app.test_client()
    created = client.post(
        "/admin/users",
        json={"name": "Bia Lima", "email": "bia@example.com", "sendEmail": True},
        headers=tenant.headers(),
    )
    assert created.status_code == 201, created.get_json()
    worker()
    message = wait_for(
        lambda: next((m for m in smtp_server.messages if m.rcpt_tos == ["bia@example.com"]), None)
    )
    match = re.search(r"(http://\S+/set-password\?token=[\w-]+)", message.part("plain"))
    assert match and match.group(1).startswith(f"{live_api.url}/set-password?token="), message.part("plain")
    link = match.group(1)
    assert link in message.part("html")

    browser.get(link)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Defina sua senha"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "pt-BR"
    username = browser.find_element(By.ID, "username")
    assert username.get_attribute("value") == "bia@example.com" and username.get_attribute("readonly")
    for field_id in ("password", "password_confirm"):  # labelled, and password managers know what it is
        assert browser.find_element(By.CSS_SELECTOR, f"label[for={field_id}]").text
        assert browser.find_element(By.ID, field_id).get_attribute("autocomplete") == "new-password"

    # A typo in the confirmation: the page says so (role=alert) and keeps the link usable.
    browser.find_element(By.ID, "password").send_keys("bia-first-password")
    browser.find_element(By.ID, "password_confirm").send_keys("bia-first-passwrod")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    # The form posts and the page comes back with the alert: wait for it, not for a fixed time.
    assert "não são iguais" in wait_for(lambda: _alert_text(browser))
    assert browser.find_element(By.ID, "password").get_attribute("aria-invalid") == "true"

    browser.find_element(By.ID, "password").send_keys("bia-first-password")
    browser.find_element(By.ID, "password_confirm").send_keys("bia-first-password")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(lambda: browser.current_url == f"{frontend.url}/login")
    assert browser.title == "Valorize login"
    # The frontend got neither a Referer nor the token.
    arrival = next(seen for seen in frontend.seen if seen["path"].startswith("/login"))
    assert arrival["path"] == "/login" and "referer" not in arrival

    login = client.post("/auth/login", json={"email": "bia@example.com", "password": "bia-first-password"})
    assert login.status_code == 200, login.get_json()
    assert login.get_json()["data"]["user_info"]["email"] == "bia@example.com"

    browser.get(link)  # one-time: the link is spent
    assert "inválido" in wait_for(lambda: _alert_text(browser))


def _alert_text(browser: Any) -> str | None:
    """The page's alert text once the page that carries it has loaded (None until then)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return browser.find_element(By.CSS_SELECTOR, "[role=alert]").text or None
    except (NoSuchElementException, StaleElementReferenceException):
        return None


# --- the page without a browser ---------------------------------------------------------------


def _invite(company_id: str, make_user: Any) -> tuple[str, str]:
    user_id, _ = make_user(company_id, email="ana@acme.com")
    with db.session_scope() as session:
        return user_id, auth_service.create_password_setup_token(session, session.get_one(User, user_id))


def test_the_page_is_self_contained_and_leaks_nothing(client, make_tenant, make_user):
    _, token = _invite(make_tenant().company_id, make_user)
    page = client.get(f"/set-password?token={token}", headers={"Accept-Language": "en"})
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "<h1>Set your password</h1>" in html and 'lang="en"' in html
    assert not re.search(r"""(src|href)=["']?https?://""", html)  # no external assets
    assert "<script" not in html
    csp = page.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert f'<style nonce="{nonce}">' in html
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert 'type="hidden" name="token"' in html


def test_a_cross_site_post_is_refused_and_a_same_origin_one_works(client, make_tenant, make_user):
    user_id, token = _invite(make_tenant().company_id, make_user)
    form = {"token": token, "password": "ana-new-password", "password_confirm": "ana-new-password"}
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        refused = client.post("/set-password", data=form, headers=headers)
        assert refused.status_code == 403
    with db.session_scope() as session:
        assert session.get_one(User, user_id).password_hash is None
    done = client.post(
        "/set-password", data=form, headers={"Sec-Fetch-Site": "same-origin", "Origin": "null"}
    )
    assert done.status_code == 303
    assert done.headers["Location"] == f"{runtime.settings().frontend_url}/login"
    assert (
        client.post("/auth/login", json={"email": "ana@acme.com", "password": "ana-new-password"}).status_code
        == 200
    )


def test_spent_unknown_or_short_inputs_answer_with_the_page(client, make_tenant, make_user):
    _, token = _invite(make_tenant().company_id, make_user)
    assert client.get("/set-password").status_code == 400
    assert client.get("/set-password?token=nope").status_code == 410
    short = client.post(
        "/set-password", data={"token": token, "password": "short", "password_confirm": "short"}
    )
    assert short.status_code == 400 and "pelo menos 8" in short.get_data(as_text=True)
    assert client.post("/set-password", data={"token": "nope", "password": "long enough"}).status_code == 410
