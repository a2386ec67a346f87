"""The operator console in a real browser: Debian's chromium, headless, driven through chromedriver.

An anonymous visit lands on the login form; an operator logs in and sees the queues and the schedule;
a company admin is refused; a read-only operator's empty/delete requests are refused by the server.
Screenshots go to test-artifacts/browser/ (gitignored). Chromium is installed by
scripts/install-chromium when missing; the tests skip, saying why, only when that cannot be done.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from app import db, runtime
from app.cron import runner, schedule
from app.jobs import enqueue
from app.jobs.rq_plumbing import queue
from tests.conftest import ROOT
from tests.console_helpers import Person, company_admin, operator, read_only_operator

pytestmark = pytest.mark.slow

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = ROOT / "test-artifacts" / "browser"


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        installed = subprocess.run(
            [str(ROOT / "scripts" / "install-chromium")], capture_output=True, text=True, timeout=900
        )
        if installed.returncode != 0:
            pytest.skip(f"chromium could not be installed: {installed.stderr.strip()[-300:]}")
    profile = tempfile.mkdtemp(prefix="valorize-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def base_url(app: Flask) -> Iterator[str]:
    """The app on a real HTTP server (a thread of this process, sharing its settings)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture
def page(browser: WebDriver, base_url: str) -> Iterator[WebDriver]:
    browser.get(f"{base_url}/admin/rq/login")
    browser.delete_all_cookies()  # each test starts logged out
    yield browser


def _wait(driver: WebDriver, condition, timeout: float = 30) -> object:  # type: ignore[no-untyped-def]
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def _log_in(driver: WebDriver, base_url: str, person: Person) -> None:
    driver.get(f"{base_url}/admin/rq/")
    _wait(driver, lambda d: d.find_elements(By.ID, "email"))
    driver.find_element(By.ID, "email").send_keys(person.email)
    driver.find_element(By.ID, "password").send_keys(person.password)
    driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()


def _shot(driver: WebDriver, name: str) -> None:
    assert driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def _queued(count: int) -> None:
    with db.session_scope() as session:
        for _ in range(count):
            enqueue(session, "probe.effect")


def test_an_anonymous_visit_lands_on_the_login_form(page: WebDriver, base_url: str) -> None:
    page.get(f"{base_url}/admin/rq/0/view/workers")
    _wait(page, lambda d: "/admin/rq/login" in d.current_url)
    assert page.find_element(By.ID, "password").is_displayed()
    assert "Workers" not in page.page_source
    _shot(page, "anonymous-redirected-to-login")


def test_an_operator_sees_the_queues_and_the_schedule(page: WebDriver, base_url: str, make_tenant) -> None:
    person = operator(make_tenant)
    _queued(3)
    runner.run_task("prune-jobs", trigger="cli")
    _log_in(page, base_url, person)
    _wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#queues tr[data-role=queue]"))
    rows = {
        row.find_elements(By.TAG_NAME, "td")[0].text: row.find_elements(By.TAG_NAME, "td")[1].text
        for row in page.find_elements(By.CSS_SELECTOR, "#queues tr[data-role=queue]")
    }
    assert rows["default"] == "3"
    _shot(page, "operator-queues")

    page.find_element(By.ID, "ops-schedule-link").click()
    _wait(page, lambda d: d.find_elements(By.ID, "schedule"))
    tasks = {
        row.get_attribute("data-task"): row
        for row in page.find_elements(By.CSS_SELECTOR, "#schedule tbody tr")
    }
    assert set(tasks) == {task.name for task in schedule.all_tasks()}
    assert "succeeded" in tasks["prune-jobs"].find_element(By.CLASS_NAME, "last-run").text
    assert "UTC" in tasks["weekly-reset"].find_element(By.CLASS_NAME, "next-run").text
    _shot(page, "operator-schedule")


def test_a_company_admin_is_refused(page: WebDriver, base_url: str, make_tenant) -> None:
    admin = company_admin(make_tenant)
    _log_in(page, base_url, admin)
    _wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, ".error"))
    assert "platform operators" in page.find_element(By.CSS_SELECTOR, ".error").text
    page.get(f"{base_url}/admin/rq/")
    _wait(page, lambda d: "/admin/rq/login" in d.current_url)  # no session was opened
    _shot(page, "company-admin-refused")


def test_a_read_only_operator_cannot_empty_or_delete(page: WebDriver, base_url: str, make_tenant) -> None:
    ops = make_tenant("Ops", super_admin=True)
    observer = read_only_operator(ops.company_id)
    _queued(2)
    _log_in(page, base_url, observer)
    _wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#queues tr[data-role=queue]"))
    page.get(f"{base_url}/admin/rq/0/view/jobs/default/queued/8/asc/1")
    _wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#jobs tr[data-role=job]"))
    assert not page.find_elements(By.ID, "empty-btn")
    assert not page.find_elements(By.CSS_SELECTOR, "[data-role=delete-job-btn]")
    job_id = page.find_element(By.CSS_SELECTOR, "#jobs tr[data-role=job]").get_attribute("data-job-id")
    _shot(page, "read-only-jobs")
    # What the buttons would send, sent anyway from the page (with the CSRF token rq-dashboard sends).
    statuses = page.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const csrf = document.cookie.split('; ').find(c => c.startsWith('_csrf_token=')).split('=')[1];
        const post = url => fetch(url, {method: 'POST', headers: {'X-CSRFToken': csrf}}).then(r => r.status);
        Promise.all([post(arguments[0]), post(arguments[1])]).then(done);
        """,
        "/admin/rq/queue/default/queued/empty",
        f"/admin/rq/job/{job_id}/delete",
    )
    assert statuses == [403, 403]
    assert queue("default", runtime.redis()).count == 2
