"""Headless Chromium driven by selenium through chromedriver, started one way
for the study page's browser tests and scripts/study_screenshot.py.

Needs Debian's `chromium` and `chromium-driver` and the `selenium` package
(the `test` extra): the tests call `driver_or_skip`, which skips them, with
the reason, without Chromium or chromedriver; the script calls `start`.
"""

from __future__ import annotations

import shutil

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

SIZE = (1200, 1000)


def start(driver_path: str, downloads: str | None = None,
          size: tuple[int, int] = SIZE,
          viewport: bool = False) -> webdriver.Chrome:
  """A headless Chromium; quit it (or use it in a `with` block) when done.

  Args:
    driver_path: the chromedriver to drive it through.
    downloads: a folder downloads are saved to without asking; None keeps
      Chromium's default.
    size: (width, height) in pixels of the window, or with `viewport` of the
      page itself.
    viewport: size the page's viewport, scrollbars hidden, rather than the
      window (whose size includes its frame): screenshots are then exactly
      `size`.

  Returns:
    The selenium driver.
  """
  options = webdriver.ChromeOptions()
  flags = ["--headless=new", "--no-sandbox", "--disable-gpu"]
  flags.append("--hide-scrollbars" if viewport else
               f"--window-size={size[0]},{size[1]}")
  for flag in flags:
    options.add_argument(flag)
  if downloads is not None:
    options.add_experimental_option("prefs", {
        "download.default_directory": downloads,
        "download.prompt_for_download": False})
  driver = webdriver.Chrome(service=Service(driver_path), options=options)
  try:
    if downloads is not None:
      driver.execute_cdp_cmd("Browser.setDownloadBehavior", {
          "behavior": "allow", "downloadPath": downloads})
    if viewport:
      driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
          "width": size[0], "height": size[1], "deviceScaleFactor": 1,
          "mobile": False})
  except BaseException:
    driver.quit()
    raise
  return driver


def _executable(*names: str) -> str | None:
  for name in names:
    path = shutil.which(name)
    if path:
      return path
  return None


def driver_or_skip(downloads: str) -> webdriver.Chrome:
  """`start` at the default window size saving downloads to `downloads`, or
  skips the calling test, with the reason, when Chromium or chromedriver is
  not installed."""
  browser = _executable("chromium", "chromium-browser", "google-chrome")
  driver_path = _executable("chromedriver")
  if browser is None:
    pytest.skip("needs Chromium (Debian package 'chromium')")
  if driver_path is None:
    pytest.skip("needs chromedriver (Debian package 'chromium-driver'; "
                "selenium's driver manager cannot download it offline)")
  return start(driver_path, downloads)
