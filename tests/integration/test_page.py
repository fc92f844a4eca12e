"""The leaderboard page in headless Chromium: its tables sort and filter, its charts draw.

The page is rendered from the committed leaderboard/leaderboard.json (with made-up schema-4
fields where it is older), plus a copy of one task under a second dataset and one failed
cell, so that the filters have something to hide. Chromium and chromedriver are the Debian
packages, installed when missing (scripts/preview.py builds the driver for both)."""

from __future__ import annotations

import json
import time

import pytest

from benchmark.report.render import to_html
from scripts.preview import PACKAGES, chromium_driver, ensure_chromium, wait_for_charts
from tests.unit.test_render import COMMITTED, board_from, with_statistics

pytestmark = pytest.mark.slow  # about 15 s: Chromium starts, parses 5 MB and draws

pytest.importorskip("selenium", reason="selenium is a test extra: pip install -e '.[test]'")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402


@pytest.fixture(scope="module")
def driver():
    problem, seconds = ensure_chromium()
    if problem:
        pytest.skip(f"no headless Chromium: {problem}")
    if seconds:
        print(f"\ninstalled {' '.join(PACKAGES)} in {seconds:.0f} s")
    browser = chromium_driver(1400, 1000)
    yield browser
    browser.quit()


def page_record() -> dict:
    """The committed record, with a second dataset (a copy of its first task) and a failure."""
    data = with_statistics(json.loads(COMMITTED.read_text()))
    task = {**data["tasks"][0], "id": "toy/copy-uniform", "dataset": "toy"}
    data["tasks"].append(task)
    data["entries"] += [{**e, "task": task["id"]} for e in data["entries"] if e["task"] == data["tasks"][0]["id"]]
    data["failed"] = [{"method": "finetune", "task": task["id"], "seed": 1, "stage": "training", "error": "out of memory"}]
    return data


@pytest.fixture(scope="module")
def page(driver, tmp_path_factory):
    data = page_record()
    path = tmp_path_factory.mktemp("page") / "index.html"
    path.write_text(to_html(board_from(data)))
    start = time.monotonic()
    driver.get(path.as_uri())
    wait_for_charts(driver)
    print(f"\npage of {path.stat().st_size / 1e6:.1f} MB drawn in {time.monotonic() - start:.1f} s")
    return driver, data


def visible_methods(driver, task_id: str) -> list[str]:
    """The methods of the rows of a task's table that the browser shows (one round trip)."""
    script = "return [...document.querySelectorAll(arguments[0])].filter(r => r.checkVisibility()).map(r => r.dataset.method)"
    return driver.execute_script(script, f'section.task[data-task="{task_id}"] table.board tbody tr')


def column(driver, task_id: str, key: str) -> list[float]:
    """The numbers of a column, in the order shown (the failed rows have none)."""
    table = driver.find_element(By.CSS_SELECTOR, f'section.task[data-task="{task_id}"] table.board')
    index = [th.get_attribute("data-key") for th in table.find_elements(By.CSS_SELECTOR, "th")].index(key)
    script = "return Array.from(arguments[0].tBodies[0].rows).map(r => r.cells[arguments[1]].dataset.value)"
    return [float(v) for v in driver.execute_script(script, table, index) if v not in (None, "")]


def test_a_header_click_sorts_its_table(page):
    driver, data = page
    task = data["tasks"][0]["id"]
    th = driver.find_element(By.CSS_SELECTOR, f'section.task[data-task="{task}"] th[data-key="test_acc"]')
    th.click()
    ascending = column(driver, task, "test_acc")
    assert ascending == sorted(ascending) and len(ascending) == len([e for e in data["entries"] if e["task"] == task])
    th.click()
    assert column(driver, task, "test_acc") == sorted(ascending, reverse=True)
    assert th.get_attribute("data-sort") == "desc"


def test_the_filters_show_the_chosen_dataset_and_skew(page):
    driver, data = page
    (first, second), copy = (t["id"] for t in data["tasks"][:2]), data["tasks"][-1]["id"]
    Select(driver.find_element(By.CSS_SELECTOR, "select#filter-dataset")).select_by_value("toy")
    assert visible_methods(driver, first) == [] and visible_methods(driver, second) == []
    shown = visible_methods(driver, copy)
    assert "retrain" in shown and shown.count("finetune") == 2  # its entry and its failed cell
    failed = driver.find_element(By.CSS_SELECTOR, f'section.task[data-task="{copy}"] tr.failed')
    assert failed.is_displayed() and "out of memory" in failed.text
    Select(driver.find_element(By.CSS_SELECTOR, "select#filter-dataset")).select_by_value("")
    Select(driver.find_element(By.CSS_SELECTOR, "select#filter-skew")).select_by_value("0.5")
    skewed = [t["id"] for t in data["tasks"] if str(t["skew"]) == "0.5"]
    for t in data["tasks"]:
        assert bool(visible_methods(driver, t["id"])) == (t["id"] in skewed)
    options = Select(driver.find_element(By.CSS_SELECTOR, "select#tradeoff-task")).options
    assert [o.get_attribute("value") for o in options] == skewed
    Select(driver.find_element(By.CSS_SELECTOR, "select#filter-skew")).select_by_value("")


def test_gold_rows_and_like_gold_are_marked(page):
    driver, data = page
    task = data["tasks"][0]["id"]
    gold = driver.find_element(By.CSS_SELECTOR, f'section.task[data-task="{task}"] tr.gold[data-method="retrain"]')
    assert "gold" in gold.text
    like = [e["method"] for e in data["entries"] if e["task"] == task and e.get("like_gold")]
    marked = driver.find_elements(By.CSS_SELECTOR, f'section.task[data-task="{task}"] tr.like-gold')
    assert sorted(r.get_attribute("data-method") for r in marked) == sorted(like)


def test_both_charts_are_drawn(page):
    driver, data = page
    for chart in ("chart-worst-group", "chart-tradeoff"):
        div = driver.find_element(By.ID, chart)
        assert "js-plotly-plot" in div.get_attribute("class") and div.find_elements(By.CSS_SELECTOR, "svg.main-svg")
    lines = driver.execute_script("return document.getElementById('chart-worst-group').data.map(t => [t.name, t.x])")
    methods = {e["method"] for e in data["entries"] if e["task"] == data["tasks"][0]["id"]}
    assert {name for name, _ in lines} == methods
    first = data["tasks"][0]["dataset"]  # the chart shows the first dataset's tasks, in rising skew
    skews = sorted({str(t["skew"]) for t in data["tasks"] if t["dataset"] == first}, key=lambda s: -1.0 if s == "uniform" else float(s))
    assert all(x == skews for _, x in lines)
    traces = driver.execute_script("return document.getElementById('chart-tradeoff').data.map(t => [t.name, t.x.length])")
    assert dict(traces)["gold"] == 2 and dict(traces)["trade-off front"] >= 1


def test_the_page_logs_no_error(page):
    driver, _ = page
    assert [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"] == []
