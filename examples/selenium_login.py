"""Selenium WebDriver (Chromium through Debian's chromedriver): log in once, restore into a new driver.

Run it with `.venv/bin/python examples/selenium_login.py`; it uses a throwaway store
unless PSP_STORE is set.
"""

import os
import tempfile

import demo_site
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from psp_cdp.selenium import SeleniumAdapter

os.environ.setdefault("PSP_STORE", tempfile.mkdtemp(prefix="psp-example-"))
site = demo_site.serve()


def chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("PSP_CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless", "--no-sandbox", f"--user-data-dir={tempfile.mkdtemp(prefix='psp-profile-')}"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")))


driver = chromium()
driver.get(f"{site}/login")
driver.find_element(By.NAME, "user").send_keys("alice")
driver.find_element(By.NAME, "password").send_keys("secret")
driver.find_element(By.TAG_NAME, "button").click()
who = WebDriverWait(driver, 10).until(expected_conditions.presence_of_element_located((By.ID, "who")))
print("driver 1:", who.text)

session = SeleniumAdapter().create_session(driver, name="login", storage="local")
session.capture()
driver.quit()

other_driver = chromium()
SeleniumAdapter().load_session(session.id).restore(other_driver)
who = other_driver.find_element(By.ID, "who").text
print("driver 2:", who, "|", other_driver.find_element(By.ID, "prefs").text)
assert who == "Logged in as alice"
other_driver.quit()
