"""The clinician's screens at a desktop (1366x900) and a phone (390x844) size: nothing scrolls
sideways, every figure is on screen, and each screen is saved for review (e2e-screenshots/)."""

import io
import re

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.e2e.helpers import SCREENSHOTS, VIEWPORTS
from tests.e2e.test_journey import FIXTURES, LESION, register

SIZES = {name: VIEWPORTS[name] for name in ("desktop", "phone")}
LONG_PATIENT = "PT-2026-000123-WESTFIELD"
LONG_LESION = "left-scapula-upper-medial-2"


def jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def fixture_rgb(name: str) -> np.ndarray:
    return np.asarray(Image.open(FIXTURES / f"{name}.jpg").convert("RGB"))


def uncertain_image() -> bytes:
    """A nevus and a vascular lesion blended half and half: the shipped model gives no class its
    minimum confidence (top about 39%)."""
    blend = (fixture_rgb("ISIC_0024698").astype(float) + fixture_rgb("ISIC_0031197")) / 2
    return jpeg(blend.astype(np.uint8))


def ruled_page() -> bytes:
    """A photo of ruled paper: not a dermoscopic image, so the gate declines it."""
    page = np.full((450, 600, 3), 245, np.uint8)
    page[::20] = 20
    return jpeg(page)


def post_analysis(page, image: bytes, name: str, **fields) -> str:
    """Upload as the page's own script does (the browser's session and CSRF token); returns the
    result page's path."""
    page.goto("/analyses/new")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    response = page.request.post("/analyses", headers={"X-Requested-With": "XMLHttpRequest"}, multipart={
        "csrf_token": token, "image": {"name": name, "mimeType": "image/jpeg", "buffer": image}, **fields})
    assert response.status == 201, response.text()
    return response.headers["location"]


@pytest.fixture(scope="module")
def clinic(browser, base_url):
    """A signed-in clinician with answered, uncertain and declined analyses, one lesion twice
    (long references, the longest class name) and an API token."""
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    register(page, "dr_screens")
    lesion = {"patient_ref": LONG_PATIENT, "lesion_ref": LONG_LESION}
    paths = {
        "answered": post_analysis(page, (FIXTURES / "ISIC_0029417.jpg").read_bytes(), "akiec.jpg", **lesion),
        "review": post_analysis(page, (FIXTURES / "ISIC_0024698.jpg").read_bytes(), "nv.jpg", **lesion),
        "uncertain": post_analysis(page, uncertain_image(), "blend.jpg", patient_ref=LONG_PATIENT),
        "declined": post_analysis(page, ruled_page(), "paper.jpg", patient_ref=LONG_PATIENT),
        "monitor": post_analysis(page, jpeg(np.asarray(Image.fromarray(fixture_rgb("ISIC_0031197")).resize(
            (1024, 768), Image.BICUBIC))), "vasc.jpg"),
    }
    page.goto("/account")
    page.get_by_label("Name of the new token").fill("dermatoscope workstation in room 2")
    page.get_by_role("button", name="Create token").click()
    yield page, paths
    context.close()


def scrolls_sideways(page) -> bool:
    """The page is wider than the window (a wide table scrolling inside its own box is not)."""
    return page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")


def outside_viewport(page, selector: str) -> list[str]:
    """Elements matching `selector` not wholly inside the window's width."""
    return page.evaluate("""selector => [...document.querySelectorAll(selector)].filter(element => {
        const box = element.getBoundingClientRect();
        return box.width > 0 && (box.left < 0 || box.right > document.documentElement.clientWidth);
    }).map(element => element.textContent.trim())""", selector)


def check_screen(page, name: str, size: str) -> None:
    """Save the screen for review, then check that it does not scroll sideways."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"screen-{name}-{size}.png"), full_page=True)
    assert not scrolls_sideways(page), (name, size)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("state", ["answered", "uncertain", "declined"])
def test_every_probability_of_a_result_is_on_screen(clinic, size, state):
    page, paths = clinic
    page.set_viewport_size(SIZES[size])
    page.goto(paths[state])
    if state == "declined":
        expect(page.get_by_text("could not be assessed")).to_be_visible()
        page.locator("details.unreliable-probabilities").evaluate("element => { element.open = true; }")
    if state == "uncertain":
        expect(page.locator(".uncertain-flag")).to_contain_text("The model is uncertain")
    expect(page.locator(".bar-value")).to_have_count(7)
    check_screen(page, f"result-{state}", size)
    assert outside_viewport(page, ".bar-value, .risk-badge, .group-tag, .risk-panel, .actions a") == []


@pytest.mark.parametrize("size", SIZES)
def test_the_history_with_long_names_and_badges_fits_or_scrolls_in_its_own_box(clinic, size):
    page, _ = clinic
    page.set_viewport_size(SIZES[size])
    page.goto("/history")
    expect(page.locator("table.history tbody tr")).to_have_count(5)
    check_screen(page, "history", size)
    if size == "desktop":  # the whole table, badges and actions included, fits the window
        assert outside_viewport(page, "table.history th, table.history td, .row-actions a") == []


@pytest.mark.parametrize("size", SIZES)
def test_the_comparison_and_the_account_fit(clinic, size):
    page, paths = clinic
    page.set_viewport_size(SIZES[size])
    page.goto(paths["answered"])
    page.get_by_role("link", name=re.compile("^Compare with this analysis")).first.click()
    expect(page.get_by_role("heading", name="Compare analyses")).to_be_visible()
    check_screen(page, "comparison", size)
    page.goto("/account")
    check_screen(page, "account", size)
    assert outside_viewport(page, ".card .button") == []  # Revoke stays in its card, on screen
    page.goto("/analyses/new")
    check_screen(page, "new-analysis", size)


def test_the_phone_file_button_is_a_44_pixel_tap_target(clinic):
    page, _ = clinic
    page.set_viewport_size(SIZES["phone"])
    page.goto("/analyses/new")
    box = page.locator("input[type=file]").bounding_box()
    assert box["height"] >= 44 and box["width"] >= 44


def test_the_heatmap_starts_as_a_blend_and_the_caption_follows_the_slider(clinic):
    page, paths = clinic
    page.set_viewport_size(SIZES["desktop"])
    page.goto(paths["answered"])
    overlay = page.locator("[data-overlay]")
    caption = page.locator("[data-stacked-caption]")
    assert overlay.evaluate("element => element.style.opacity") == "0.5"
    expect(caption).to_have_text(re.compile(r"^Image as analysed with the Grad-CAM heatmap for .+ at 50%$"))
    page.get_by_label("Grad-CAM heatmap strength").fill("0")
    expect(caption).to_have_text("Image as analysed (Grad-CAM heatmap hidden)")
    page.screenshot(path=str(SCREENSHOTS / "screen-heatmap-at-0.png"))
    page.get_by_label("Grad-CAM heatmap strength").fill("50")
    page.locator(".image-compare").screenshot(path=str(SCREENSHOTS / "screen-heatmap-at-50.png"))


def test_bars_are_coloured_by_clinical_group(clinic):
    page, paths = clinic
    page.goto(paths["answered"])
    colours = page.evaluate("""() => [...document.querySelectorAll('meter')].map(meter =>
        [meter.className, getComputedStyle(meter).getPropertyValue('--bar').trim()])""")
    assert {name: colour for name, colour in colours} == {"bar-malignant": "#a4161a", "bar-benign": "#2f6fa3"}
    page.locator("table.probabilities").screenshot(path=str(SCREENSHOTS / "screen-probability-bars.png"))


def test_the_chosen_image_is_previewed_and_kept_through_a_refusal(clinic):
    page, _ = clinic
    page.set_viewport_size(SIZES["phone"])
    page.goto("/analyses/new")
    page.get_by_label(re.compile("Dermoscopic image")).set_input_files(str(LESION))
    preview = page.locator("[data-preview]")
    expect(preview).to_be_visible()
    assert preview.evaluate("image => image.naturalWidth") > 0
    page.get_by_label("Age (years)").fill("200")
    page.get_by_label("Patient reference").fill("PT-KEPT")
    page.get_by_role("button", name="Analyse image").click()
    expect(page.locator("#age-error")).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "age"
    assert page.evaluate("document.querySelector('#image').files.length") == 1
    expect(page.locator("[data-preview]")).to_be_visible()
    expect(page.get_by_label("Patient reference")).to_have_value("PT-KEPT")
    page.screenshot(path=str(SCREENSHOTS / "screen-refused-age-phone.png"), full_page=True)
    page.get_by_label("Age (years)").fill("40")
    page.get_by_role("button", name="Analyse image").click()
    expect(page).to_have_url(re.compile(r"/analyses/[A-Za-z0-9_-]{20,}$"), timeout=30_000)
    expect(page.get_by_text("PT-KEPT").first).to_be_visible()


def test_a_slow_upload_shows_real_progress(clinic):
    page, _ = clinic
    page.set_viewport_size(SIZES["desktop"])
    page.goto("/analyses/new")
    # About 0.7 MB of noisy pixels, sent at 128 kB/s: several seconds of visible progress.
    rng = np.random.default_rng(0)
    big = np.asarray(Image.fromarray(fixture_rgb("ISIC_0025964")).resize((1024, 768)), np.int16)
    noisy = np.clip(big + rng.integers(-12, 13, big.shape), 0, 255).astype(np.uint8)
    page.get_by_label(re.compile("Dermoscopic image")).set_input_files(
        files=[{"name": "large.jpg", "mimeType": "image/jpeg", "buffer": jpeg(noisy, quality=100)}])
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    network.send("Network.emulateNetworkConditions", {"offline": False, "latency": 20,
                                                      "downloadThroughput": -1, "uploadThroughput": 128 * 1024})
    page.get_by_role("button", name="Analyse image").click()
    page.wait_for_function("""() => { const bar = document.querySelector('[data-upload-progress]');
        return bar && !bar.hidden && bar.value > 5 && bar.value < 95; }""", timeout=20_000)
    expect(page.locator("[data-busy-text]")).to_contain_text(
        re.compile(r"Uploading the image: \d+% \([\d.]+ [kM]B of [\d.]+ [kM]B\)"))
    page.screenshot(path=str(SCREENSHOTS / "screen-upload-progress.png"))
    expect(page).to_have_url(re.compile(r"/analyses/[A-Za-z0-9_-]{20,}$"), timeout=60_000)
    network.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0,
                                                      "downloadThroughput": -1, "uploadThroughput": -1})


def test_a_new_token_is_shown_once_copied_with_one_press_and_revoked_after_asking(browser, base_url):
    context = browser.new_context(base_url=base_url)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    register(page, "dr_tokens")
    page.goto("/account")
    page.get_by_label("Name of the new token").fill("EHR plug-in")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").input_value()
    assert token.startswith("dl_")
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == token
    page.reload()
    expect(page.locator("#new-token")).to_have_count(0)
    tokens = page.get_by_role("table", name="Your API tokens")
    expect(tokens.get_by_role("cell", name="EHR plug-in", exact=True)).to_have_count(1)  # the reload made no second
    page.get_by_role("link", name=re.compile("^Revoke")).click()
    expect(page.get_by_role("heading", name=re.compile("Revoke the token"))).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "screen-revoke-confirm.png"))
    page.get_by_role("button", name="Revoke the token").click()
    expect(page.get_by_text("The token was revoked.")).to_be_visible()
    context.close()


def test_the_pdf_is_named_by_patient_and_date(clinic):
    page, paths = clinic
    page.goto(paths["answered"])
    with page.expect_download() as download:
        page.get_by_role("link", name="Download PDF report (A4)").click()
    assert re.fullmatch(rf"dermalens-{LONG_PATIENT}-\d{{4}}-\d{{2}}-\d{{2}}-[A-Za-z0-9_-]{{1,8}}\.pdf",
                        download.value.suggested_filename), download.value.suggested_filename
