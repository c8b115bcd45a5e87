"""The cascade lab as a published app: rendered by Voila, driven in headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from liqlab.serve.published import PUBLISHED, app_url
from tests.voila_server import CHROMIUM, chromium_browser, serve_apps

APP = "05_cascade_lab.ipynb"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Debian chromium not installed at {CHROMIUM}"),
]

RENDERED = """() => {
  const el = document.querySelector('.js-plotly-plot');
  return !!(el && el.data && el.querySelectorAll('.heatmaplayer image').length >= 2);
}"""
# the live cascade figure: the price path and the first plot's heatmap, as the browser holds them
PATH = """() => {
  const el = document.querySelector('.js-plotly-plot');
  const t = el.data.find(t => t.meta === 'path');
  return Array.from(t.y);
}"""
FINGERPRINT = """() => {
  const el = document.querySelector('.js-plotly-plot');
  const hm = el.data.find(t => t.meta === 'heat');
  let s = 0;
  for (const row of hm.z) for (const v of row) if (v !== null && v === v) s += v;
  const path = el.data.find(t => t.meta === 'path');
  return [hm.z.length, s, path.y.length, path.y[path.y.length - 1]].join('|');
}"""
MARKER = """() => {
  const el = document.querySelector('.js-plotly-plot');
  const t = el.data.find(t => t.meta === 'current');
  return [Array.from(t.x), Array.from(t.y)];
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    assert APP in PUBLISHED
    root = tmp_path_factory.mktemp("voila-cascade")
    with serve_apps(root / "voila.log", root / "exports") as base:
        yield base


@pytest.fixture(scope="module")
def chromium():
    with chromium_browser() as browser:
        yield browser


def shot(page, path: Path) -> None:
    """Screenshot of the lab itself (Voila scrolls inside its own container, so a full-page shot cuts it)."""
    lab = page.locator(".liqlab-cascade-lab")
    lab.scroll_into_view_if_needed()
    lab.screenshot(path=str(path))


def status(page) -> str:
    return page.inner_text(".liqlab-status")


def test_cascade_app_steps_reacts_and_reports(server, chromium, artifacts):
    context = chromium.new_context(viewport={"width": 1400, "height": 1300})
    page = context.new_page()
    try:
        page.goto(app_url(server, APP), wait_until="commit", timeout=120_000)
        page.wait_for_function(RENDERED, timeout=150_000)
        page.wait_for_timeout(500)
        page.screenshot(path=str(artifacts / "05_cascade_lab_0_page_top.png"))
        shot(page, artifacts / "05_cascade_lab_1_initial.png")
        assert "shock liquidated" in status(page)
        full = page.evaluate(PATH)
        assert len(full) >= 3 and full[0] == 100.0 and full[-1] < 98.0

        # step buttons walk the cascade back and forth in the live figure
        page.click(".liqlab-step-start button, button.liqlab-step-start")
        page.wait_for_function(f"() => ({PATH})().length === 1")
        page.click(".liqlab-step-next button, button.liqlab-step-next")
        page.wait_for_function(f"() => ({PATH})().length === 2")
        assert page.evaluate(PATH) == pytest.approx(full[:2])
        shot(page, artifacts / "05_cascade_lab_2_round1.png")

        # a thinner book: a new, larger cascade in the live figure
        before = page.evaluate(FINGERPRINT)
        assert page.evaluate(MARKER)[1] == [200.0]
        page.fill(".liqlab-depth input", "100")
        page.press(".liqlab-depth input", "Enter")
        page.wait_for_function(f"prev => ({FINGERPRINT})() !== prev", arg=before, timeout=30_000)
        page.wait_for_function(f"() => ({MARKER})()[1][0] === 100", timeout=30_000)  # the ring moved
        assert "depth $100M" in status(page)
        assert page.evaluate(PATH)[-1] < full[-1]  # a thinner book lets the price fall further
        page.wait_for_timeout(300)
        shot(page, artifacts / "05_cascade_lab_3_thin_book.png")

        # bad input: reported in the status line, the last good figure stays
        good = page.evaluate(FINGERPRINT)
        page.fill(".liqlab-depth input", "0")
        page.press(".liqlab-depth input", "Enter")
        page.wait_for_function("() => document.querySelector('.liqlab-status').innerText.includes('Error')")
        assert "book depth must be positive" in status(page)
        assert page.evaluate(FINGERPRINT) == good
        shot(page, artifacts / "05_cascade_lab_4_error.png")

        html = page.content()
        for code in ("from liqlab", "import ", "lab = CascadeLab", "assert "):
            assert code not in html, f"source code {code!r} visible in the page"
        assert "Traceback" not in page.inner_text("body")
    finally:
        context.close()
