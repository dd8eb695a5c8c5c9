"""The leaderboard site in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

Loads the page generated for the committed results from disk, sorts by a column, filters by a
loss, switches to individual runs and asserts on the rows a person would see. Skips, saying why,
where Playwright or a Chromium binary is missing (``apt-get install chromium``; Playwright's own
browser download is never used). ``BENCH_UPDATE_SCREENSHOT=1`` also refreshes docs/leaderboard.png,
the screenshot the README shows.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bench.leaderboard import site as leaderboard_html

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "leaderboard" / "results"
SCREENSHOT = ROOT / "docs" / "leaderboard.png"
pytestmark = pytest.mark.slow


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    executable = os.environ.get("BENCH_CHROMIUM") or _chromium()
    if not executable:
        pytest.skip("no Chromium binary on PATH: `apt-get install chromium` (or set BENCH_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        except Exception as exc:  # any reason a browser cannot start here is a skip, said once
            pytest.skip(f"Chromium at {executable} does not start: {' '.join(str(exc).split())[:200]}")
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("site")
    leaderboard_html.write_site(COMMITTED, directory)
    return directory


def _visible(page, column: str) -> list[str]:
    """The text of ``column`` in every visible row, top to bottom."""
    headers = page.locator("#board thead th").all_inner_texts()
    index = [h.strip() for h in headers].index(column)
    return page.locator("#board tbody tr.row:visible").evaluate_all(
        f"rows => rows.map(r => r.cells[{index}].innerText.trim())")


def test_sort_filter_and_switch_views_in_chromium(browser, site, tmp_path):
    page = browser.new_page(viewport={"width": 1500, "height": 760})
    page.goto((site / "synthetic-5ad84006.html").as_uri())
    assert page.locator("#board-shown").inner_text() == "9 rows"
    assert _visible(page, "Loss")[0] == "ntxent"  # the table opens best first, as the markdown does

    page.click("#board thead th:has-text('t2a mAP@10')")  # ascending: the worst row comes first
    scores = [float(cell.split()[0]) for cell in _visible(page, "t2a mAP@10")]  # "61.31 [59.05, 63.61]"
    assert scores == sorted(scores) and len(scores) == 9
    assert _visible(page, "Loss")[0] == "triplet (negatives=hard)"
    assert page.locator("#board tbody tr").last.inner_text().startswith("chance")  # chance stays at the bottom
    page.click("#board thead th:has-text('t2a mAP@10')")  # descending
    assert [float(c.split()[0]) for c in _visible(page, "t2a mAP@10")] == sorted(scores, reverse=True)

    page.select_option("#board-loss", "ntxent")
    assert _visible(page, "Loss") == ["ntxent", "ntxent"]
    assert _visible(page, "Training") == ["8 epochs", "4 epochs"]
    page.check("input[name=view][value=run]")  # individual runs: the 4-epoch row has three seeds
    assert page.locator("#board-shown").inner_text() == "4 rows"
    assert sorted(_visible(page, "Seeds")) == ["seed 0", "seed 0", "seed 1", "seed 2"]
    page.select_option("#board-loss", "")
    page.select_option("#board-kind", "fusion")
    assert _visible(page, "Loss") == ["fusion: combsum of 3 runs"]

    page.select_option("#board-kind", "")
    page.check("input[name=view][value=agg]")
    page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)
    assert (tmp_path / "leaderboard.png").stat().st_size > 10_000
    if os.environ.get("BENCH_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(tmp_path / "leaderboard.png", SCREENSHOT)

    page.click("#board tbody tr.row:visible >> nth=0 >> a")  # a row's link opens its run page
    assert "/runs/" in page.url and page.locator("svg").count() == 2
    assert "bench run --dataset synthetic" in page.locator("pre").first.inner_text()
    page.close()
