"""The pipeline page in the Airflow UI, as a user and as an intruder sees it: the plugin loads,
an anonymous or forged request gets 401/403 and no data, the JSON endpoint's numbers are the
databases' own, and headless Chromium, signed in, opens the page from the UI's navigation, reads
the same numbers and saves a screenshot under the state folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from include import names
from local_stack.airflow_api import AirflowApi
from local_stack.services import airflow_auth_header, kafka_client, pg_connect
from ops.pipeline_page import JSON_PATH, URL_PREFIX
from ops.pipeline_status import kafka_end_offsets

UI_TIMEOUT_S = 90


def _expected(stack) -> dict:
    with pg_connect(stack, names.USERSTREAM_DATABASE) as conn:
        staged = conn.execute("SELECT count(*) FROM staging.users").fetchone()[0]
        pending, failed, published = conn.execute(
            "SELECT count(*) FILTER (WHERE published_at IS NULL AND failed_at IS NULL), "
            "count(*) FILTER (WHERE failed_at IS NOT NULL), "
            "count(*) FILTER (WHERE published_at IS NOT NULL) FROM staging.user_events"
        ).fetchone()
    offsets = kafka_end_offsets(kafka_client(stack.settings),
                                names.USERS_TOPIC)
    return {"staged": staged, "outbox": {"pending": pending, "failed": failed,
                                         "published": published}, "end_offsets": offsets}


def test_the_plugin_is_loaded_with_its_navigation_entry(stack):
    api = AirflowApi(stack)
    assert api.call("GET", "/plugins/importErrors")["import_errors"] == []
    (plugin,) = [p for p in api.call("GET", "/plugins")["plugins"]
                 if p["name"] == "userstream_pipeline"]
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == [URL_PREFIX]
    assert [(v["href"], v["destination"]) for v in plugin["external_views"]] == [
        (f"{URL_PREFIX}/", "nav")]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer forged.token.value"}],
                         ids=["anonymous", "forged"])
@pytest.mark.parametrize("path", ["/", JSON_PATH])
def test_a_request_without_a_valid_login_gets_no_data(stack, headers, path):
    response = requests.get(f"{stack.settings.airflow_url}{URL_PREFIX}{path}", headers=headers,
                            cookies={"_token": "forged"} if headers else None, timeout=30)
    assert response.status_code in (401, 403), response.status_code
    assert "outbox" not in response.text and names.USERS_TOPIC not in response.text


def test_the_json_numbers_are_the_databases(stack):
    expected = _expected(stack)
    response = requests.get(f"{stack.settings.airflow_url}{URL_PREFIX}{JSON_PATH}",
                            headers=airflow_auth_header(stack), timeout=120)
    assert response.status_code == 200, response.text[:500]
    status = response.json()["status"]
    assert status["staged_users"]["value"] == expected["staged"]
    assert status["outbox"]["value"] == expected["outbox"]
    assert {int(p): o for p, o in status["kafka_end_offsets"]["value"].items()} == \
        expected["end_offsets"]


def test_the_page_in_the_ui_shows_the_databases_numbers(stack, signed_in_browser):
    browser = signed_in_browser
    wait = WebDriverWait(browser, UI_TIMEOUT_S,
                         ignored_exceptions=[StaleElementReferenceException])
    # The navigation entry opens the page inside the UI.
    browser.get(f"{stack.settings.airflow_url}/plugin/userstream")
    frame = wait.until(lambda b: next(iter(b.find_elements(
        By.CSS_SELECTOR, f"iframe[src*='{URL_PREFIX}/']")), None))
    browser.switch_to.frame(frame)
    wait.until(lambda b: b.find_elements(By.ID, "hops"))
    expected = _expected(stack)

    def text(element_id: str) -> str:
        return browser.find_element(By.ID, element_id).text

    assert text("staged-users") == f"{expected['staged']:,}"
    assert [text(f"outbox-{k}") for k in ("pending", "failed", "published")] == [
        f"{expected['outbox'][k]:,}" for k in ("pending", "failed", "published")]
    assert text("end-offsets") == " ".join(
        f"p{p}={o:,}" for p, o in sorted(expected["end_offsets"].items()))
    assert browser.find_elements(By.ID, "throughput-chart")
    assert browser.find_elements(By.ID, "latest-messages")
    browser.switch_to.default_content()
    screenshot = Path(stack.settings.state_dir) / "artifacts" / "pipeline_page.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    print(f"pipeline page screenshot: {screenshot}")
