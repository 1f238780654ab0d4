"""Asset lineage as a user sees it: headless Chromium (Debian's chromium and chromium-driver) signs
into the Airflow UI with the generated admin password, follows the Assets menu to the staged-events
asset, and the lineage graph shows the three DAGs and three assets chained in pipeline order.
A screenshot of the graph is saved under the state folder for a human to look at."""

from __future__ import annotations

from pathlib import Path

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as shown
from selenium.webdriver.support.wait import WebDriverWait

from include import names
from include.assets import CASSANDRA_USERS, STAGED_USER_EVENTS, USERS_TOPIC
from local_stack.airflow_api import AirflowApi

INGEST, RELAY, STREAM = names.PIPELINE_DAG_IDS
UI_TIMEOUT_S = 60


def test_assets_graph_in_the_ui_shows_the_three_hops_and_their_assets(stack, signed_in_browser):
    browser = signed_in_browser

    api = AirflowApi(stack)
    for dag_id in (INGEST, RELAY, STREAM):
        api.wait_for_dag(dag_id)  # assets appear once the DAGs that use them are parsed
    # The React UI re-renders lists as data arrives, so a found element can go stale; retry.
    wait = WebDriverWait(browser, UI_TIMEOUT_S,
                         ignored_exceptions=[StaleElementReferenceException])
    browser.get(stack.settings.airflow_url)

    _click(wait, (By.CSS_SELECTOR, "a[href$='/assets']"))
    _click(wait, (By.LINK_TEXT, STAGED_USER_EVENTS.name))
    wait.until(lambda b: "/assets/" in b.current_url)

    expected_dags = {f"dag:{INGEST}", f"dag:{RELAY}", f"dag:{STREAM}"}
    wait.until(lambda b: expected_dags <= set(_graph_nodes(b)) and len(_graph_nodes(b)) >= 6)
    nodes = _graph_nodes(browser)

    labels = {node: label for node, (label, _) in nodes.items()}
    asset_labels = {label for node, label in labels.items() if node.startswith("asset:")}
    assert asset_labels == {STAGED_USER_EVENTS.name, USERS_TOPIC.name, CASSANDRA_USERS.name}, labels
    assert {labels[f"dag:{d}"] for d in (INGEST, RELAY, STREAM)} == {INGEST, RELAY, STREAM}

    # Pipeline order: the graph lays lineage out left to right.
    x = {label: left for label, left in nodes.values()}
    order = [INGEST, STAGED_USER_EVENTS.name, RELAY, USERS_TOPIC.name, STREAM,
             CASSANDRA_USERS.name]
    assert sorted(order, key=x.__getitem__) == order, x
    assert len(browser.find_elements(By.CSS_SELECTOR, ".react-flow__edge")) >= 5

    screenshot = Path(stack.settings.state_dir) / "artifacts" / "asset_lineage.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    print(f"lineage screenshot: {screenshot}")


def _graph_nodes(browser) -> dict[str, tuple[str, float]]:
    """node id (`dag:<id>`, `asset:<id>`) -> (label, left edge), read in one pass because the
    graph re-renders while it lays itself out."""
    rows = browser.execute_script(
        "return [...document.querySelectorAll('.react-flow__node')].map(n =>"
        " [n.dataset.id, n.innerText.trim(), n.getBoundingClientRect().left]);")
    return {node: (label, left) for node, label, left in rows}


def _click(wait, locator: tuple[str, str]) -> None:
    def clicked(browser) -> bool:
        element = shown.element_to_be_clickable(locator)(browser)
        if not element:
            return False
        element.click()
        return True

    wait.until(clicked)
