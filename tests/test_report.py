"""The report as a researcher opens it: report.html of the quick run in headless Chromium (Debian's ``chromium``,
or the browser named by ``TOYMODELS_CHROMIUM``); the browser tests skip, saying why, where there is none."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import QUICK, ROOT, run_snakemake
from test_workflow import figure_names

pytestmark = pytest.mark.workflow
SCREENSHOTS = ROOT / "results" / "report-check"


@pytest.fixture(scope="module")
def report(quick_run) -> Path:
    run_snakemake(quick_run, "--cores", "1", f"--configfile={QUICK}", "--report", "report.html", "--report-stylesheet",
                  str(ROOT / "workflow" / "report" / "style.css"), timeout=600)
    return quick_run / "report.html"


def test_report_landing_page_holds_the_scorecard(report, quick_run):
    first_line = (quick_run / "results" / "claims.md").read_text().splitlines()[0].strip("*")
    assert first_line in report.read_text(), "the report's landing page shows the claims scorecard"


def chromium() -> str | None:
    return os.environ.get("TOYMODELS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def page(report):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
    browser_path = chromium()
    if browser_path is None:
        pytest.skip("no Chromium on this machine: `sudo apt-get install chromium` (see the README) runs these tests")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(report.as_uri())
        page.wait_for_selector("#app .prose li")
        yield page
        browser.close()


def test_first_page_shows_every_claim_of_the_scorecard_with_links_to_its_figures(page, quick_run):
    claims = pd.read_parquet(quick_run / "results" / "claims.parquet")
    scorecard = page.locator("#app .prose").first
    items = scorecard.locator("li")
    assert items.count() == len(claims), "one scorecard entry per claim on the landing page"
    first = claims.iloc[0]
    assert items.nth(0).inner_text().startswith(f"{first['verdict']}, {first['id']}: ")
    assert scorecard.evaluate("box => box.getBoundingClientRect().top") >= 0, "the scorecard starts in view"
    page.screenshot(path=SCREENSHOTS / "landing.png")
    items.nth(0).get_by_role("link", name=f"{first['figure']}.png").click()
    caption = page.locator("nav .prose-invert").first
    caption.wait_for(state="visible")
    assert f"results/figures/{first['figure']}.json" in caption.inner_text(), "the link opens the figure's caption"


def test_every_figure_renders_with_its_caption_and_provenance(page, quick_run):
    results = page.evaluate("results")  # the report's own index: path -> {data_uri, caption, ...}
    figures = quick_run / "results" / "figures"
    names = figure_names(QUICK)
    paths = {name: next(path for path in results if path.endswith(f"figures/{name}.png")) for name in names}
    for name, path in paths.items():
        page.evaluate("path => app.showResultInfo(path)", path)  # what a scorecard link or a Results entry does
        # wait for this figure's caption: the previous figure's stays visible until the panel re-renders
        caption = page.locator("nav .prose-invert", has_text=f"results/figures/{name}.json").first
        caption.wait_for(state="visible")
        text = " ".join(caption.inner_text().split())
        assert _shown_in_order(figures / f"{name}.rst", text), f"{name}: its caption is shown"
        assert f"Provenance (the full record: results/figures/{name}.json)" in text, f"{name}: its provenance is shown"
        assert "Drawn by " in text and ".parquet (sha256 " in text, f"{name}: its input tables are named"
        page.locator("nav table td a[type='button']").first.click()  # the eye button beside the figure's name
        image = page.locator("#app img[src^='data:image/png']").first
        image.wait_for(state="visible")
        assert image.get_attribute("src") == results[path]["data_uri"], name
        page.wait_for_function("() => document.querySelector(\"#app img[src^='data:image/png']\").complete")
        assert image.evaluate("img => img.naturalWidth") > 300, f"{name}: the PNG decodes"
        if name == names[0]:
            page.screenshot(path=SCREENSHOTS / "figure.png")


def _shown_in_order(caption_rst: Path, text: str, count: int = 12) -> bool:
    """Whether the plain words among the caption's first ``count`` appear in ``text`` in their order (words holding
    reST markup, literals, roles or math, are left out: the browser shows them rendered)."""
    plain = re.sub(r":\w+:`[^`]*`|``[^`]*``", " ", caption_rst.read_text())  # roles (math) and literals
    words = [word for word in plain.split()[:count] if not re.search(r"[`*:\\|_]", word)]
    assert len(words) >= 3, f"{caption_rst} has too few plain words to recognise it by"
    position = 0
    for word in words:
        position = text.find(word, position)
        if position < 0:
            return False
        position += len(word)
    return True
