"""A real browser (Debian chromium via Playwright): run a generator, rate it, see it counted.

Needs `/usr/bin/chromium` (apt-get install -y chromium); Playwright's own browsers are never
downloaded. The final screenshot is saved under $STUDIO_TEST_ARTIFACTS (default
`test-artifacts/`) for CI to keep.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from studio.api import Studio
from studio.config import Settings
from tests.test_ui import free_port
from tests.ui_fixtures import SKETCH_REGISTRY

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
ARTIFACTS = Path(os.environ.get("STUDIO_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))

pytestmark = [pytest.mark.browser,
              # In CI (`make test` installs it) a missing browser is a failure, not a skip.
              pytest.mark.skipif(not shutil.which(CHROMIUM) and not os.environ.get("CI"), reason="Debian chromium is not installed "
                                 "(apt-get install -y chromium)")]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    from studio.ui.app import launch

    # + the real face animator (MediaPipe FaceMesh on CPU, packaged models): a short clip takes seconds
    registry = {**SKETCH_REGISTRY, "face": "generators.face_anim:FaceAnimator"}
    studio = Studio(Settings(home=tmp_path_factory.mktemp("browser-home")), registry=registry)
    demo = launch(studio, port=free_port(), block=False, quiet=True)
    yield demo
    demo.close()
    studio.close()


@pytest.fixture(scope="module")
def page(served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(served.local_url)
        yield page
        browser.close()


def test_generate_rate_and_see_it_counted(page) -> None:
    page.get_by_role("tab", name="More").click()
    page.locator("#echo-prompt textarea").fill("browser says hi")
    page.locator("#echo-run").click()
    page.wait_for_function("() => { const t = document.querySelector('#echo-text textarea');"
                           " return t && t.value.includes('browser says hi'); }")
    assert page.locator("#echo-progress [data-state='done']").count() == 1
    # A refusal before any job (seed "abc"): its sentence in place, the result kept, no stale "done".
    page.locator("#echo-seed input, #echo-seed textarea").first.fill("abc")
    page.locator("#echo-run").click()
    page.wait_for_selector("#echo-error:has-text('whole number')")
    assert page.locator("#echo-progress [data-state='failed']").count() == 1
    assert "browser says hi" in page.locator("#echo-text textarea").input_value()
    assert page.locator(".error:visible, [data-testid='error']:visible").count() == 0  # no Error badges
    page.locator("#echo-seed input, #echo-seed textarea").first.fill("")
    page.locator("#echo-stars").get_by_label("4").check()
    page.locator("#echo-thumb").get_by_label("👍 up").check()
    page.locator("#echo-tags textarea, #echo-tags input").first.fill("warm, short")
    page.locator("#echo-save-rating").click()
    page.wait_for_selector("#echo-rating-status:has-text('Rating saved')")
    page.get_by_role("tab", name="Feedback").click()
    page.wait_for_selector("#feedback-counts:has-text('1 rating')")
    summary = page.locator("#feedback-summary").inner_text()
    assert "echo" in summary and "4.00" in summary
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "browser-feedback.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_blind_ab_vote_is_counted(page) -> None:
    page.get_by_role("tab", name="More").click()
    page.locator("#echo-ab input").check()
    page.locator("#echo-run").click()
    page.wait_for_selector("#echo-vote-1:visible")
    page.wait_for_function("() => { const t = document.querySelector('#echo-ab2-text textarea');"
                           " return t && t.value.includes('#'); }")
    page.locator("#echo-vote-1").click()
    page.wait_for_selector("#echo-ab-status:has-text('Vote saved')")
    page.get_by_role("tab", name="Feedback").click()
    page.wait_for_selector("#feedback-counts:has-text('1 A/B vote')")


def test_unlanded_generators_say_so(page) -> None:
    page.get_by_role("tab", name="Music").click()
    notice = page.wait_for_selector(".studio-unavailable:visible")
    assert "music" in notice.inner_text() and "has not landed in this studio yet" in notice.inner_text()


def test_sketch_canvas_sends_drawn_strokes(page) -> None:
    """Pen strokes drawn with the mouse land in the params box as stroke JSON and reach the generator."""
    import json

    from generators.sketch_strokes import parse_drawing

    page.get_by_role("tab", name="More").click()
    page.get_by_role("tab", name="Pen").click()
    canvas = page.locator("#pen-strokes-canvas canvas")
    canvas.wait_for(state="visible")
    box = canvas.bounding_box()
    scale = 384 / box["width"]  # canvas pixels per CSS pixel
    lines = [((40, 40), (200, 60)), ((60, 200), (300, 320)), ((300, 40), (320, 300))]
    for (x0, y0), (x1, y1) in lines:
        page.mouse.move(box["x"] + x0 / scale, box["y"] + y0 / scale)
        page.mouse.down()
        page.mouse.move(box["x"] + x1 / scale, box["y"] + y1 / scale, steps=8)
        page.mouse.up()
    page.locator("#pen-strokes-canvas .studio-sketch-undo").click()  # the third line goes again
    page.wait_for_function("() => { const t = document.querySelector('#pen-strokes textarea');"
                           " return t && t.value && JSON.parse(t.value).strokes.length === 2; }")
    sent = json.loads(page.locator("#pen-strokes textarea").input_value())
    assert (sent["width"], sent["height"]) == (384, 384)
    for stroke, ((x0, y0), (x1, y1)) in zip(sent["strokes"], lines):
        assert len(stroke) >= 5  # pen down, the moves, pen up: a real polyline
        assert abs(stroke[0][0] - x0) <= 2 and abs(stroke[0][1] - y0) <= 2
        assert abs(stroke[-1][0] - x1) <= 2 and abs(stroke[-1][1] - y1) <= 2
    drawing = parse_drawing(json.dumps(sent))  # the real sketch generator's parser takes it as is
    assert len(drawing.strokes) == 2 and drawing.width == 384
    page.locator("#pen-run").click()
    page.wait_for_selector("#pen-progress [data-state='done']")
    page.wait_for_function("() => document.querySelectorAll('#pen-gallery img').length >= 2")  # SVG + PNG
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-sketch-canvas.png"), full_page=True)
    page.locator("#pen-strokes-canvas .studio-sketch-clear").click()
    page.wait_for_function("() => document.querySelector('#pen-strokes textarea').value === ''")
    # A pasted drawing (e.g. a sketch output's JSON) is redrawn on the canvas.
    page.locator("#pen-strokes textarea").fill('[[[10, 10], [100, 100], [200, 50]]]')
    page.wait_for_selector("#pen-strokes-canvas .studio-sketch-status:has-text('1 stroke(s), 3 point(s)')")


def test_breeder_pick_two_parents_and_breed(page) -> None:
    """The Picbreeder loop by mouse: a grid, click two candidates, Breed, see generation 2."""
    page.get_by_role("tab", name="Image").click()
    page.get_by_role("tab", name="Breeder").click()
    page.locator("#breeder-ws-size input").fill("96")
    page.locator("#breeder-ws-size input").press("Enter")
    page.locator("#breeder-ws-new").click()
    page.wait_for_function("() => document.querySelectorAll('#breeder-ws-grid .thumbnail-item').length === 9")
    thumbs = page.locator("#breeder-ws-grid .thumbnail-item")
    thumbs.nth(1).click()
    page.wait_for_selector("#breeder-ws-status:has-text('1 picked')")
    thumbs.nth(4).click()
    page.wait_for_selector("#breeder-ws-status:has-text('2 picked')")
    assert page.locator("#breeder-ws-picked input:checked").count() == 2
    page.locator("#breeder-ws-breed").click()
    page.wait_for_selector("#breeder-ws-status:has-text('Generation 2 of 2')")
    assert "from 2, 5 of gen 1" in page.locator("#breeder-ws-status").inner_text()
    page.wait_for_function("() => document.querySelectorAll('#breeder-ws-history .thumbnail-item').length === 2")
    assert page.locator("#breeder-ws-progress [data-state='done']").count() == 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-breeder.png"), full_page=True)
    page.locator("#breeder-ws-undo").click()
    page.wait_for_selector("#breeder-ws-status:has-text('Generation 1 of 1')")


def edit_cell(page, table, row: int, col: int, value: str, tries: int = 3) -> None:
    """Type into a Dataframe cell as a creator does (double-click, type, Enter).

    On a busy 2-core CI machine the table re-renders after the previous cell's commit, and a
    double-click landing mid-render opens no editor; so wait for the cell's editor, and try again
    if the value did not stick.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    cell = table.locator(f"[data-testid='cell-{row}-{col}']")
    for attempt in range(tries):
        cell.dblclick()
        editor = cell.locator("textarea[aria-label='Edit cell']")
        try:
            editor.wait_for(state="visible", timeout=10_000)
            editor.fill(value)
            editor.press("Enter")
            cell.locator(f"text={value}").wait_for(state="visible", timeout=10_000)
            return
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise


def test_story_bible_form_write_and_branch(page) -> None:
    """A writer fills the bible form (a character in the table), writes a beat, then branches."""
    page.get_by_role("tab", name="Story").click()
    page.locator("#story-ws-title input, #story-ws-title textarea").first.fill("The Keeper")
    page.locator("#story-ws-setting textarea").fill("a lighthouse at night")
    table = page.locator("#story-ws-characters")
    for col, value in enumerate(("Mara", "stubborn, kind", "keep the light on")):
        edit_cell(page, table, 0, col, value)
    page.locator("#story-ws-length input[type='number']").fill("24")
    page.locator("#story-ws-length input[type='number']").press("Enter")
    page.locator("#story-ws-write").click()
    page.wait_for_selector("#story-ws-status:has-text('Written')")
    doc = page.locator("#story-ws-doc textarea").input_value()
    assert "INT. LIGHTHOUSE" in doc.upper()
    assert page.locator("#story-ws-progress [data-state='done']").count() == 1
    page.locator("#story-ws-branch").click()
    page.wait_for_selector("#story-ws-versions label:has-text('v3')")
    labels = page.locator("#story-ws-versions label").all_inner_texts()
    assert any("v2" in t and "branch 1" in t for t in labels) and any("branch 2" in t for t in labels)
    page.get_by_role("tab", name="Preview").click()
    page.wait_for_selector("#story-ws-preview h1:has-text('The Keeper')")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-story.png"), full_page=True)
    page.locator("#story-ws-versions label:has-text('v1')").click()
    page.get_by_role("tab", name="Script").click()
    page.wait_for_function("() => !document.querySelector('#story-ws-doc textarea').value.includes('branch')")
    assert page.locator("#story-ws-doc textarea").input_value() == doc


def _run_tone(page, pitch: str) -> None:
    """Run the test Tone generator (More tab) with `pitch`; wait until its result is drawn."""
    page.get_by_role("tab", name="More").click()
    page.get_by_role("tab", name="Tone").click()
    field = page.locator("#tone-pitch input[type='number']")
    field.fill(pitch)
    field.press("Enter")
    before = page.locator("#tone-progress").inner_text()  # "done · seed N" of an earlier run, maybe
    page.locator("#tone-run").click()
    page.wait_for_function("(before) => { const t = document.querySelector('#tone-progress [data-state=\"done\"]');"
                           " return t && document.querySelector('#tone-progress').innerText !== before; }", arg=before)


def test_audio_waveform_and_zoomable_score(page) -> None:
    _run_tone(page, "440")
    page.wait_for_selector("#tone-result-audio .waveform-container", state="visible")
    page.wait_for_function("""() => { const root = document.querySelector('#tone-result-audio'); const stack = [root];
        while (stack.length) { const el = stack.pop(); if (el.tagName === 'CANVAS' && el.width > 0) return true;
            if (el.shadowRoot) stack.push(...el.shadowRoot.children); stack.push(...el.children); }
        return false; }""")
    score = page.locator("#tone-result-svg img.studio-svg")
    score.wait_for(state="visible")
    page.wait_for_function("() => document.querySelector('#tone-result-svg img.studio-svg').naturalWidth === 1280")
    page.locator("#tone-result-svg [data-zoom='in']").click()
    page.wait_for_selector("#tone-result-svg .studio-zoom-level:has-text('125%')")
    assert round(score.bounding_box()["width"]) == 1600  # the score drawn 1.25x its own 1280 px
    page.locator("#tone-result-svg [data-zoom='fit']").click()
    page.wait_for_function("() => !document.querySelector('#tone-result-svg .studio-zoom-level').innerText.includes('125')")
    wrap = page.locator("#tone-result-svg .studio-svg-wrap").bounding_box()
    assert abs(score.bounding_box()["width"] - wrap["width"]) <= 2  # fit: the column's width, whole score seen
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-audio-score.png"), full_page=True)


def test_gallery_compare_two_jobs_and_run_again(page) -> None:
    """Two tone jobs: pick both cards in compare mode, see them side by side with what differs; then
    run one again from the Gallery and see the new job listed without pressing Search."""
    _run_tone(page, "330")
    _run_tone(page, "660")
    page.get_by_role("tab", name="Gallery").click()  # the tab searches by itself when opened
    # Cards are captioned "<generator> · seed N · k file(s)": the tone jobs' cards, newest first.
    cards = page.locator("#gallery-images .thumbnail-item", has_text="tone ·")
    tones = ("() => [...document.querySelectorAll('#gallery-images .thumbnail-item')]"
             ".filter(c => c.textContent.includes('tone ·')).length")
    page.wait_for_function(f"() => ({tones})() >= 2")
    count = cards.count()
    page.locator("#gallery-compare-mode input").check()
    cards.nth(0).click()  # newest first: 660 Hz
    page.wait_for_function("() => document.querySelector('#gallery-compare-a input').value.includes('tone-')")
    cards.nth(1).click()  # 330 Hz
    page.wait_for_selector("#gallery-compare-diff:has-text('pitch')")
    diff = page.locator("#gallery-compare-diff").inner_text()
    assert "660" in diff and "330" in diff
    for side in ("a", "b"):
        page.wait_for_selector(f"#gallery-cmp-{side}-result-audio .waveform-container", state="visible")
        page.wait_for_selector(f"#gallery-cmp-{side}-result-svg img.studio-svg", state="visible")
    a_box = page.locator("#gallery-cmp-a-result-svg").bounding_box()
    b_box = page.locator("#gallery-cmp-b-result-svg").bounding_box()
    assert a_box["x"] + a_box["width"] <= b_box["x"] + 1  # side by side, A left of B
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-gallery-compare.png"), full_page=True)
    # Run the picked job again: progress moves to done, and the Gallery lists the new job by itself.
    page.locator("#gallery-compare-mode input").uncheck()
    cards.nth(0).click()
    page.wait_for_function("() => document.querySelector('#gallery-pick input').value.includes('tone-')")
    page.locator("#gallery-rerun").click()
    page.wait_for_selector("#gallery-rerun-progress [data-state='done']")
    page.wait_for_selector("#gallery-status:has-text('again with seed')")
    page.wait_for_function(f"() => ({tones})() === {count + 1}")


def test_gan_pick_a_and_b_then_mix_and_walk(page) -> None:
    page.get_by_role("tab", name="Image").click()
    page.get_by_role("tab", name="Glyph GAN").click()
    page.locator("#gan-ws-sample").click()
    page.wait_for_function("() => document.querySelectorAll('#gan-ws-grid .thumbnail-item').length === 16")
    grid = page.locator("#gan-ws-grid .thumbnail-item")
    grid.nth(0).click()
    page.wait_for_selector("#gan-ws-status:has-text('A = 1')")
    grid.nth(3).click()
    page.wait_for_selector("#gan-ws-status:has-text('B = 4')")
    page.locator("#gan-ws-mix-run").click()
    page.wait_for_selector("#gan-ws-status:has-text('Mixed from 1 (A) to 4 (B)')")
    page.wait_for_selector("#gan-ws-result img", state="visible")
    page.locator("#gan-ws-walk").click()
    page.wait_for_selector("#gan-ws-status:has-text('Walked from 1 (A) to 4 (B)')")
    page.wait_for_selector("#gan-ws-strip img", state="visible")
    assert page.locator("#gan-ws-progress [data-state='done']").count() == 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-gan.png"), full_page=True)


def test_face_tab_is_built_when_opened_and_plays_its_mp4(page, tmp_path_factory) -> None:
    """The Face tab's panel is built when the tab is first opened (issue #14, start-up); the real
    face animator makes a 1 s clip that the result's video player loads and can play (H.264 MP4)."""
    from PIL import Image
    from skimage import data

    portrait = tmp_path_factory.mktemp("face") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(portrait)
    page.locator("#story-ws-write").wait_for(state="attached")  # the page is up (when run on its own)
    assert page.locator("#face-run").count() == 0  # nothing of it on the page yet
    page.get_by_role("tab", name="Face", exact=True).click()
    page.locator("#face-run").wait_for(state="visible")
    page.locator("#face-image input[type='file']").set_input_files(str(portrait))
    page.locator("#face-image img").first.wait_for(state="visible")  # uploaded
    page.locator("#face-consent input").check()
    for field, value in (("duration", "1"), ("fps", "8"), ("size", "128")):
        box = page.locator(f"#face-{field} input[type='number']")
        box.fill(value)
        box.press("Enter")
    page.locator("#face-run").click()
    page.wait_for_selector("#face-progress [data-state='done']", timeout=180_000)
    # playable: the browser decoded its header and a first frame (readyState >= HAVE_CURRENT_DATA)
    page.wait_for_function("""() => { const v = document.querySelector('#face-result-video video');
        return v && v.readyState >= 2 && v.videoWidth === 128 && Math.abs(v.duration - 1) < 0.2; }""")
    assert ".mp4" in page.locator("#face-result-video video").get_attribute("src")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-face-video.png"), full_page=True)


# workspace -> (how to open it, its main controls); at 1366x768 these sit on the first screen
LAYOUT = {
    # Story: the document itself starts on the first screen (its first 200 px visible), the move
    # buttons and the bible's first field beside it
    "story": (("Story",), ["#story-ws-write", "#story-ws-cancel", "#story-ws-title", "#story-ws-doc textarea"]),
    "breeder": (("Image", "Breeder"), ["#breeder-ws-new", "#breeder-ws-breed", "#breeder-ws-grid"]),
    "gan": (("Image", "Glyph GAN"), ["#gan-ws-sample", "#gan-ws-walk", "#gan-ws-mix-run", "#gan-ws-grid"]),
    "tone": (("More", "Tone"), ["#tone-run", "#tone-pitch"]),
    "music": (("Music",), ["#tab-music .studio-unavailable"]),
    "gallery": (("Gallery",), ["#gallery-search", "#gallery-images", "#gallery-text"]),
}


def test_workspaces_fit_a_1366x768_screen(page) -> None:
    """On a 1366x768 laptop screen each workspace's main controls are on the first screen (buttons
    whole; a grid or editor at least its first 200 px) and the page never scrolls sideways."""
    page.set_viewport_size({"width": 1366, "height": 768})
    try:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        problems = []
        for name, (tabs, controls) in LAYOUT.items():
            page.evaluate("() => window.scrollTo(0, 0)")
            for tab in tabs:
                page.get_by_role("tab", name=tab, exact=True).click()
            for sel in controls:
                page.locator(sel).first.wait_for(state="visible")
            page.screenshot(path=str(ARTIFACTS / f"layout-1366x768-{name}.png"))
            sideways = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            if sideways > 0:
                problems.append(f"{name}: the page scrolls {sideways} px sideways")
            for sel in controls:
                box = page.locator(sel).first.bounding_box()
                if box["x"] < 0 or box["x"] + box["width"] > 1366 or box["y"] < 0 or box["y"] + min(box["height"], 200) > 768:
                    problems.append(f"{name}: {sel} at x={box['x']:.0f}..{box['x'] + box['width']:.0f}, "
                                    f"y={box['y']:.0f} is off the 1366x768 screen")
        assert not problems, "\n".join(problems)
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


def test_every_setting_drawers_are_built_when_opened(page) -> None:
    """The "Every setting" drawers are not on the page until a session opens one (issue #14,
    start-up); opened, the full form is there; the Gallery's "Open in its tab" opens a drawer this
    session never opened, built with the output's seed. (After the breeder test: its jobs. A run
    from a panel built this way: test_face_tab_is_built_when_opened_and_plays_its_mp4.) Last in
    the file: with it run before the Gallery compare test, Chromium's page process died during
    that test's "Run it again" (3 of 3 full runs at load ~10). Rerun in that order at load ~7-8
    it passed, but the compare test took ~6 min instead of ~1 and the page process grew to 1.4 GB
    resident, busy ~35% of a core: this test leaves the Gallery's pick on a 10-file breeder job
    (its images, downloads and genome JSON shown); the heavy page is the likely cause, not proven.)"""
    page.get_by_role("tab", name="Story", exact=True).click()
    assert page.locator("#story-run").count() == 0  # not built before it is opened
    page.locator("#story-advanced").get_by_text("Every setting (the full form)").click()
    page.locator("#story-run").wait_for(state="visible")
    assert page.locator("#story-prompt textarea").is_editable()
    page.get_by_role("tab", name="Gallery").click()
    card = page.locator("#gallery-images .thumbnail-item", has_text="breeder ·").first
    card.wait_for()
    seed = re.search(r"seed (\d+)", card.inner_text()).group(1)
    assert page.locator("#breeder-run").count() == 0
    card.click()
    page.wait_for_function("() => document.querySelector('#gallery-pick input').value.includes('breeder-')")
    page.locator("#gallery-open").click()
    page.locator("#breeder-run").wait_for(state="visible")  # on the Image tab's Breeder, drawer open
    page.wait_for_function("(seed) => { const e = document.querySelector('#breeder-seed input, #breeder-seed textarea');"
                           " return e && e.value === seed; }", arg=seed)
