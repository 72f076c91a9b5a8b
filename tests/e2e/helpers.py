"""Helpers of the browser tests: accessibility checks and screenshots."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "e2e-screenshots"
VIEWPORTS = {"desktop": {"width": 1366, "height": 900}, "tablet": {"width": 820, "height": 1180},
             "phone": {"width": 390, "height": 844}}
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"


def check_accessibility(page, name: str) -> None:
    """Run axe-core on the current page; fail on serious or critical violations."""
    page.evaluate(AXE.read_text())
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
               for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not serious, f"{name}: {serious}"


def screenshot(page, name: str) -> None:
    """Save the page at every viewport (full page), then restore the desktop size."""
    SCREENSHOTS.mkdir(exist_ok=True)
    for label, size in VIEWPORTS.items():
        page.set_viewport_size(size)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(VIEWPORTS["desktop"])
