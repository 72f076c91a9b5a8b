"""The whole clinician journey in a real browser, with accessibility checks and screenshots."""

import base64
import io
import re
import subprocess
from pathlib import Path

import numpy as np
from playwright.sync_api import expect

from tests.e2e.helpers import ROOT, check_accessibility, screenshot

FIXTURES = ROOT / "tests" / "fixtures"
LESION = FIXTURES / "ISIC_0025964.jpg"
SECOND_LESION = FIXTURES / "ISIC_0024698.jpg"
PASSWORD = "a long clinical passphrase"


def blue_cast_jpeg(path: Path) -> bytes:
    """The image as a dermoscope with a far too cool white balance would have taken it."""
    from PIL import Image

    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    cast = np.clip(rgb * [0.7, 1.0, 1.35], 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(cast).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def register(page, username):
    page.goto("/register")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/analyses/new$"))


def open_from_menu(page, name, url_pattern):
    """Follow a menu link and wait until the new page has loaded: its scripts attach their
    handlers (drop, submit, comparison ticks) at DOMContentLoaded, and an event sent before that
    would miss them (seen once, on a loaded machine)."""
    page.get_by_role("link", name=name, exact=True).click()
    expect(page).to_have_url(re.compile(url_pattern))
    page.wait_for_load_state("load")


def analyse_with_busy_indicator(page):
    """Submit the form and check the busy indicator appeared as it was sent.

    The page's own submit handler runs first; a listener added here then records what the
    user saw into sessionStorage, which survives the navigation to the result page.
    """
    page.evaluate("""() => {
        const form = document.querySelector('form[data-upload-form]');
        form.addEventListener('submit', () => {
            const busy = form.querySelector('[data-busy]');
            const button = form.querySelector('[data-busy-button]');
            sessionStorage.setItem('busy', JSON.stringify({
                visible: !busy.hidden && getComputedStyle(busy).display !== 'none',
                text: busy.textContent.trim(), disabled: button.disabled}));
        });
    }""")
    page.get_by_role("button", name="Analyse image").click()
    expect(page).to_have_url(re.compile(r"/analyses/[A-Za-z0-9_-]{20,}$"), timeout=30_000)
    busy = page.evaluate("JSON.parse(sessionStorage.getItem('busy'))")
    assert busy["visible"] and busy["disabled"] and re.search("Uploading|Analysing", busy["text"])


def test_the_clinician_journey(page):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))
    screenshot(page, "01-sign-in")
    check_accessibility(page, "sign in")
    page.goto("/register")
    check_accessibility(page, "register")
    screenshot(page, "02-register")
    register(page, "dr_journey")

    # Empty history first.
    page.get_by_role("link", name="History", exact=True).click()
    expect(page.get_by_text("No analyses yet")).to_be_visible()
    check_accessibility(page, "empty history")
    screenshot(page, "03-history-empty")

    # New analysis by the file picker.
    open_from_menu(page, "New analysis", r"/analyses/new$")
    check_accessibility(page, "new analysis")
    screenshot(page, "04-new-analysis")
    page.get_by_label(re.compile("Dermoscopic image")).set_input_files(str(LESION))
    page.get_by_label("Patient reference").fill("PT-E2E-1")
    page.get_by_label("Lesion reference").fill("left-shoulder")
    page.get_by_label("Age (years)").fill("40")
    page.get_by_label("Sex").select_option("female")
    page.get_by_label("Body site").select_option("chest")
    page.get_by_label("Note").fill("Changed in size since spring")
    analyse_with_busy_indicator(page)
    first_url = page.url

    # Result page.
    expect(page.get_by_role("heading", name="Analysis result")).to_be_visible()
    expect(page.locator("meter")).to_have_count(7)
    expect(page.get_by_text("Recommended action:")).to_be_visible()
    expect(page.get_by_text("Decision support only.")).to_be_visible()
    expect(page.get_by_text("PT-E2E-1").first).to_be_visible()
    overlay = page.locator("[data-overlay]")
    expect(overlay).to_be_visible()
    slider = page.get_by_label("Grad-CAM heatmap strength")
    slider.fill("30")
    assert overlay.evaluate("element => element.style.opacity") == "0.3"
    toggle = page.get_by_role("button", name="Show side by side")
    toggle.click()
    expect(page.get_by_role("button", name="Show stacked")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Show stacked").click()
    check_accessibility(page, "result")
    screenshot(page, "05-result")
    page.emulate_media(media="print")
    page.screenshot(path=str(ROOT / "e2e-screenshots" / "05-result-print.png"), full_page=True)
    expect(page.locator(".compare-controls")).to_be_hidden()
    page.emulate_media(media="screen")

    # PDF download.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download PDF report (A4)").click()
    pdf_path = Path(download_info.value.path())
    assert pdf_path.read_bytes().startswith(b"%PDF-")
    png_prefix = ROOT / "e2e-screenshots" / "06-report-page"
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(pdf_path), str(png_prefix)],
                   check=True)
    rendered = next(ROOT.glob("e2e-screenshots/06-report-page*.png"))
    from PIL import Image

    pixels = np.asarray(Image.open(rendered).convert("L"))
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.01  # text and images, not a blank page

    # Record what the lesion turned out to be; the site performance page counts it.
    page.get_by_label("Diagnosis").select_option("nv")
    page.get_by_label("Established by").select_option("histopathology")
    page.get_by_label("Date (YYYY-MM-DD, optional)").fill("2026-11-30")
    page.get_by_role("button", name="Save outcome").click()
    expect(page.get_by_text("The outcome was recorded.")).to_be_visible()
    expect(page.locator("#outcome")).to_contain_text("Histopathology, 2026-11-30")
    open_from_menu(page, "Site performance", r"/site-performance$")
    expect(page.get_by_text("Too few outcomes to say anything yet: 1 recorded")).to_be_visible()
    check_accessibility(page, "site performance")
    screenshot(page, "05b-site-performance")

    # Second analysis by drag and drop, of an image taken under a blue light.
    open_from_menu(page, "New analysis", r"/analyses/new$")
    data = base64.b64encode(blue_cast_jpeg(SECOND_LESION)).decode()
    transfer = page.evaluate_handle(
        """data => { const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
                      const transfer = new DataTransfer();
                      transfer.items.add(new File([bytes], 'dropped.jpg', {type: 'image/jpeg'}));
                      return transfer; }""", data)
    page.locator("[data-drop-zone]").dispatch_event("drop", {"dataTransfer": transfer})
    expect(page.get_by_text("Selected: dropped.jpg")).to_be_visible()
    page.get_by_label("Patient reference").fill("PT-E2E-2")
    analyse_with_busy_indicator(page)
    expect(page.get_by_text("dropped.jpg")).to_be_visible()
    expect(page.locator(".notices")).to_contain_text("Colours adjusted before analysis")
    screenshot(page, "06b-result-with-notice")

    # An invalid file gives an inline error and stores nothing.
    open_from_menu(page, "New analysis", r"/analyses/new$")
    page.get_by_label(re.compile("Dermoscopic image")).set_input_files(
        files=[{"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"these are not pixels"}])
    page.get_by_role("button", name="Analyse image").click()
    expect(page.get_by_role("alert")).to_contain_text("not a JPEG or PNG")
    screenshot(page, "07-invalid-upload")

    # Compare the two side by side, ticked in the history.
    open_from_menu(page, "History", r"/history")
    status = page.locator("[data-comparison-status]")
    page.get_by_role("button", name="Compare selected").click()
    expect(status).to_contain_text("Select between 2 and 4 analyses to compare (0 selected).")
    for box in page.get_by_role("checkbox").all():
        box.check()
    expect(status).to_have_text("2 selected.")
    page.get_by_role("button", name="Compare selected").click()
    expect(page).to_have_url(re.compile(r"/analyses/compare\?ids="))
    expect(page.get_by_role("heading", name="Compare analyses")).to_be_visible()
    expect(page.locator("table.comparison thead th")).to_have_count(2)
    expect(page.get_by_text("These analyses have different patient references.")).to_be_visible()
    check_accessibility(page, "comparison")
    screenshot(page, "07b-compare")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download comparison PDF (A4)").click()
    assert Path(download_info.value.path()).read_bytes().startswith(b"%PDF-")
    page.emulate_media(media="print")
    page.screenshot(path=str(ROOT / "e2e-screenshots" / "07b-compare-print.png"), full_page=True)
    expect(page.locator(".comparison-scroll")).to_be_visible()
    expect(page.get_by_role("link", name="Back to history")).to_be_hidden()
    page.emulate_media(media="screen")

    # History with filters, then reopen.
    page.get_by_role("link", name="History", exact=True).click()
    expect(page.locator("table.history tbody tr")).to_have_count(2)
    page.get_by_label("Patient reference").fill("PT-E2E-1")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.history tbody tr")).to_have_count(1)
    check_accessibility(page, "history")
    screenshot(page, "08-history")
    page.locator("table.history tbody tr").first.get_by_role("link").first.click()
    expect(page).to_have_url(first_url)

    # Delete with confirmation.
    page.get_by_role("link", name="Delete…").click()
    check_accessibility(page, "confirm delete")
    screenshot(page, "09-confirm-delete")
    page.get_by_role("button", name="Delete permanently").click()
    expect(page.get_by_text("were deleted")).to_be_visible()
    expect(page.locator("table.history tbody tr")).to_have_count(1)

    # Account page, error page, sign out.
    page.get_by_role("link", name="Account").click()
    check_accessibility(page, "account")
    screenshot(page, "10-account")
    page.goto("/analyses/does-not-exist-at-all-here")
    expect(page.get_by_role("heading", name=re.compile("Not found"))).to_be_visible()
    check_accessibility(page, "404")
    screenshot(page, "11-not-found")
    page.get_by_role("button", name=re.compile("Sign out")).click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/history")
    expect(page).to_have_url(re.compile(r"/login\?next="))


def test_keyboard_only_sign_in_with_visible_focus(page):
    register(page, "dr_keyboard")
    page.get_by_role("button", name=re.compile("Sign out")).click()
    page.goto("/login")
    focused_ids = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.id")
        focused_ids.append(focused)
        if focused == "username":
            break
    assert "username" in focused_ids
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.type("dr_keyboard")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/analyses/new$"))
    # The upload form is reachable and operable from the keyboard too.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.tagName") in ("A", "INPUT", "BUTTON")


def test_core_flow_works_without_javascript(browser, base_url):
    context = browser.new_context(java_script_enabled=False, base_url=base_url)
    page = context.new_page()
    register(page, "dr_nojs")
    page.get_by_label(re.compile("Dermoscopic image")).set_input_files(str(LESION))
    page.get_by_role("button", name="Analyse image").click()
    expect(page.locator("meter")).to_have_count(7)
    expect(page.locator("[data-compare-controls]")).to_be_hidden()  # both images shown instead
    expect(page.get_by_alt_text("Dermoscopic image as analysed")).to_be_visible()
    context.close()
