"""Screenshot of a leaderboard page in headless Chromium.

    python scripts/preview.py [DIRECTORY] [--out PNG] [--width PX] [--height PX]

Opens DIRECTORY/index.html (default ``leaderboard/``) from file:// and saves the top of the
page, a table and the first chart, as a PNG (default DIRECTORY/preview.png). Chromium and
its driver are the Debian packages ``chromium`` and ``chromium-driver``; they are installed
with apt-get when missing. Selenium is given the driver's path, so it downloads nothing.

tests/integration/test_page.py builds its browser with ``ensure_chromium`` and ``chromium_driver`` from
here: one place for the driver's construction.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PACKAGES = ["chromium", "chromium-driver"]


def _apt_install() -> subprocess.CompletedProcess:
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def ensure_chromium() -> tuple[str | None, float]:
    """Install Chromium and its driver with apt-get when either is missing. Returns (why
    they cannot be had, or None; seconds spent installing, 0 when nothing was done)."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return None, 0.0
    if shutil.which("apt-get") is None:
        return "chromium is not installed and there is no apt-get to install it", 0.0
    start = time.monotonic()
    done = _apt_install()
    if done.returncode != 0 and "Unable to locate package" in done.stderr + done.stdout:
        subprocess.run(["apt-get", "update"], capture_output=True, text=True)
        done = _apt_install()
    seconds = time.monotonic() - start
    if done.returncode != 0 or not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"apt-get install {' '.join(PACKAGES)} failed: {tail[0]}", seconds
    return None, seconds


def chromium_driver(width: int = 1400, height: int = 1000):
    """A headless Chromium WebDriver of the given window size, on the system's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--allow-file-access-from-files"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console, for driver.get_log
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def wait_for_charts(driver, timeout: float = 20.0) -> None:
    """Wait until plotly has drawn an svg in every chart div of the page."""
    from selenium.webdriver.support.ui import WebDriverWait

    script = "return [...document.querySelectorAll('.chart')].every(d => d.querySelector('svg.main-svg'))"
    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script))


def screenshot(page: Path, out: Path, width: int = 1400, height: int = 1000) -> Path:
    """Save a PNG of the top of ``page`` (an index.html) as shown in headless Chromium."""
    driver = chromium_driver(width, height)
    try:
        driver.get(page.resolve().as_uri())
        wait_for_charts(driver)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path, default=Path("leaderboard"))
    parser.add_argument("--out", type=Path, help="the PNG (default DIRECTORY/preview.png)")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args(argv)
    page = args.directory / "index.html"
    if not page.exists():
        print(f"no page at {page}: build it with `unlearn-bench leaderboard`", file=sys.stderr)
        return 1
    problem, seconds = ensure_chromium()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    if seconds:
        print(f"installed {' '.join(PACKAGES)} in {seconds:.0f} s")
    out = screenshot(page, args.out or args.directory / "preview.png", args.width, args.height)
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
