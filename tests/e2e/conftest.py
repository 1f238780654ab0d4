"""The headless browser the UI tests drive (Debian's chromium and chromium-driver), signed in to
the Airflow UI with the generated admin password."""

from __future__ import annotations

import shutil

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as shown
from selenium.webdriver.support.wait import WebDriverWait

from local_stack.services import AIRFLOW_ADMIN_USER

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
LOGIN_TIMEOUT_S = 60


@pytest.fixture
def browser():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:  # a missing browser fails the test, like a missing service: never a skip
        pytest.fail(f"{' and '.join(missing)} not installed "
                    "(apt-get install chromium chromium-driver)")

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1600,1000"):
        options.add_argument(argument)
    # The explicit driver path keeps Selenium from looking for (downloading) a driver of its own.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def log_in(browser, stack) -> None:
    browser.get(stack.settings.airflow_url)
    # The first page redirects to the login form; a look-up during that navigation fails with
    # "aborted by navigation", so the login wait also ignores WebDriverException.
    WebDriverWait(browser, LOGIN_TIMEOUT_S, ignored_exceptions=[WebDriverException]).until(
        shown.visibility_of_element_located((By.NAME, "username")))
    browser.find_element(By.NAME, "username").send_keys(AIRFLOW_ADMIN_USER)
    browser.find_element(By.NAME, "password").send_keys(stack.secret["AIRFLOW_ADMIN_PASSWORD"])
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, LOGIN_TIMEOUT_S).until(lambda b: "/auth/login" not in b.current_url)


@pytest.fixture
def signed_in_browser(browser, stack):
    log_in(browser, stack)
    return browser
