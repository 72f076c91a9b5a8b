"""Printable PDF report of one analysis (ReportLab), built from plain data.

Every dynamic value passes through `printable` before it reaches a Paragraph: it escapes the
text, as ReportLab parses a small markup language and an unescaped patient note could otherwise
inject tags (including <img src=...>, which would make ReportLab fetch a URL), and it sets runs
of characters the main font lacks (Chinese, Japanese, Korean) in a fallback font. The fonts
are embedded (dermalens/fonts, licences there), so any name prints as itself, never as boxes.
"""

import io
from dataclasses import dataclass
from pathlib import Path
# Only output escaping is used from this module; no XML is ever parsed (bandit B406).
from xml.sax.saxutils import escape  # nosec B406

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (Flowable, Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer,
                                Table, TableStyle)

from dermalens.explanation import HEATMAP_NAME
from dermalens.lesions import MODEL_LIMITS

FONTS = Path(__file__).parent / "fonts"
FONT, BOLD_FONT = "DejaVuSansCondensed", "DejaVuSansCondensed-Bold"
# For characters the main font lacks, in order: Chinese and Japanese, then Korean (Hangul).
FALLBACK_FONTS = ("DroidSansFallback", "NanumGothicCoding")
for _name, _file in ((FONT, "DejaVuSansCondensed.ttf"), (BOLD_FONT, "DejaVuSansCondensed-Bold.ttf"),
                     ("DroidSansFallback", "DroidSansFallbackFull.ttf"),
                     ("NanumGothicCoding", "NanumGothicCoding.ttf")):
    pdfmetrics.registerFont(TTFont(_name, FONTS / _file))
# <b> in a paragraph picks the family's bold face.
pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD_FONT, italic=FONT, boldItalic=BOLD_FONT)
_GLYPHS = {name: frozenset(pdfmetrics.getFont(name).face.charToGlyph) for name in (FONT, *FALLBACK_FONTS)}


def _font_for(character: str) -> str:
    """The first font with a glyph for `character`; the main font if none has one."""
    if character.isspace():
        return FONT
    return next((name for name in (FONT, *FALLBACK_FONTS) if ord(character) in _GLYPHS[name]), FONT)


def printable(text: str) -> str:
    """Paragraph markup printing `text` exactly: escaped, and runs of characters the main font
    has no glyph for set in the first fallback font that has them."""
    runs: list[tuple[str, str]] = []
    for character in text:
        font = _font_for(character)
        if runs and runs[-1][0] == font:
            runs[-1] = (font, runs[-1][1] + character)
        else:
            runs.append((font, character))
    return "".join(escape(run) if font == FONT else f'<font name="{font}">{escape(run)}</font>'
                   for font, run in runs)


PAPER_SIZES = {"a4": A4, "letter": LETTER}
SERVICE_NAME = "DermaLens"
INTENDED_USE = (
    "Decision support for qualified clinicians. This is not a diagnosis and not a medical device. "
    "The result must be interpreted together with the clinical history and examination; "
    "histology remains the reference standard."
)
# The warning style's border is drawn outside its paragraph: this much room keeps it off the
# table below.
WARNING_GAP = 3 * mm
HEATMAP_NOTE = (f"The {HEATMAP_NAME} shows which image regions most influenced the top class. "
                "It is not proof of a finding and not a lesion boundary.")
# Text and background of the risk category's cell, by category code, as on screen.
RISK_COLOURS = {"urgent": ("#a4161a", "#fde8e8"), "keratinocyte": ("#8a4b00", "#fff1dc"),
                "review": ("#8a4b00", "#fff1dc"), "routine": ("#8a4b00", "#fff1dc"),
                "monitor": ("#1f6b35", "#e5f4ea"), "indeterminate": ("#4a4f57", "#eceef1")}


@dataclass(frozen=True)
class PrintedAnalysis:
    """What any report prints of one analysis, already resolved to display strings and bytes."""

    analysis_id: str
    created_at: str
    patient_ref: str
    lesion_ref: str
    site: str
    image_jpeg: bytes
    heatmap_jpeg: bytes
    image_size: tuple[int, int]
    ranked_classes: list[tuple[str, str, float]]  # (code, name, probability), most likely first
    malignant_probability: float
    risk_code: str
    risk_label: str
    # The gate declined the image: no class or probability is printed as a result.
    declined: bool
    indeterminate_reasons: list[str]
    uncertainty_reasons: list[str]
    notices: list[str]
    model_version: str
    # What the lesion turned out to be, as one line; "" until recorded.
    outcome: str


@dataclass(frozen=True)
class ReportData(PrintedAnalysis):
    """Everything printed on the report of one analysis."""

    clinician: str
    age: str
    sex: str
    note: str
    risk_action: str
    model_name: str
    model_sha256: str


def build_report(data: ReportData, paper: str = "a4") -> bytes:
    """Render the report; `paper` is "a4" or "letter". Returns the PDF bytes.

    A typical report fits one A4 page; a long note moves the clinician's assessment, whole, to
    the next page."""
    page_size = PAPER_SIZES.get(paper, A4)
    styles = _styles()
    width = page_size[0] - 32 * mm
    story = [
        Paragraph(f"{SERVICE_NAME} - lesion analysis report", styles["title"]),
        Paragraph(printable(INTENDED_USE), styles["warning"]),
        Spacer(1, WARNING_GAP),
        _table([
            ["Patient reference", data.patient_ref, "Lesion reference", data.lesion_ref],
            ["Age", data.age, "Sex", data.sex],
            ["Body site", data.site, "Clinician", data.clinician],
            ["Date and time", data.created_at, "Analysis ID", data.analysis_id],
        ], styles, width),
        Spacer(1, 2 * mm),
        _images(data, width),
        Paragraph(printable(HEATMAP_NOTE), styles["small"]),
        Spacer(1, 2 * mm),
        Paragraph("Result", styles["heading"]),
    ]
    # Quality and uncertainty flags share one box: each box costs a typical report room it
    # does not have (it must stay on one A4 sheet).
    flags = _flags(data)
    if flags:
        story += [Paragraph(flags, styles["warning"]), Spacer(1, WARNING_GAP)]
    rows = [["Risk category", _risk_cell(data, styles)], ["Recommended action", data.risk_action]]
    if not data.declined:
        rows.append(["Malignant probability (mel + bcc + akiec)", f"{data.malignant_probability:.0%}"])
    if data.outcome:
        rows.append(["Outcome (recorded)", data.outcome])
    story.append(_table(rows, styles, width, label_columns=(0,), shaded=[((1, 0), _risk_background(data))]))
    if data.declined:
        story += [Spacer(1, 2 * mm), Paragraph("No diagnosis is given: the image could not be assessed.",
                                               styles["body"])]
    else:
        story += [Spacer(1, 2 * mm), Paragraph("Most likely diagnoses (calibrated probabilities)",
                                               styles["subheading"])]
        story.append(_table([[f"{index + 1}. {name} ({code})", f"{probability:.1%}"]
                             for index, (code, name, probability) in enumerate(data.ranked_classes[:3])],
                            styles, width, label_columns=()))
    if data.note:
        story += [Spacer(1, 2 * mm), Paragraph("Note", styles["subheading"]),
                  Paragraph(printable(data.note).replace("\n", "<br/>"), styles["body"])]
    story += [
        Spacer(1, 2 * mm),
        Paragraph("Model", styles["subheading"]),
        Paragraph(printable(f"{data.model_name} version {data.model_version}; weights SHA-256 "
                         f"{data.model_sha256}"), styles["small"]),
        Paragraph(printable(MODEL_LIMITS), styles["small"]),
        Spacer(1, 2 * mm),
        _assessment(styles, width),
    ]
    header = (f"Patient {data.patient_ref} · lesion {data.lesion_ref} · analysed {data.created_at} · "
              f"analysis {data.analysis_id}")
    return _build(story, page_size, f"{SERVICE_NAME} analysis {data.analysis_id}", header)


@dataclass(frozen=True)
class ComparisonReportData:
    """Everything printed on a comparison report: analyses oldest first, with what to know."""

    clinician: str
    printed_at: str
    analyses: list[PrintedAnalysis]
    summary: str
    cautions: list[str]
    standing_caution: str


# A comparison's images: at most this tall, so two to four analyses and the assessment usually
# fit one sheet.
COMPARED_IMAGE_HEIGHT = 32 * mm


def build_comparison_report(data: ComparisonReportData, paper: str = "a4") -> bytes:
    """Render 2-4 analyses side by side (one column each, oldest first); returns the PDF bytes.

    Two analyses with short flags fit one A4 page; long flags move the clinician's assessment,
    whole, to the next page."""
    page_size = PAPER_SIZES.get(paper, A4)
    styles = _styles()
    width = page_size[0] - 32 * mm
    label_width = 30 * mm
    column = (width - label_width) / len(data.analyses)

    analyses = data.analyses

    def images(which):
        return [_scaled(getattr(item, which), item.image_size, column - 4 * mm, COMPARED_IMAGE_HEIGHT)
                for item in analyses]

    table = _table([
        ["Date and time", *(item.created_at for item in analyses)],
        ["Patient reference", *(item.patient_ref for item in analyses)],
        ["Lesion reference", *(item.lesion_ref for item in analyses)],
        ["Body site", *(item.site for item in analyses)],
        ["Image as analysed", *images("image_jpeg")],
        [HEATMAP_NAME, *images("heatmap_jpeg")],
        ["Risk category", *(_risk_cell(item, styles) for item in analyses)],
        ["Malignant probability", *("not assessed" if item.declined else f"{item.malignant_probability:.0%}"
                                    for item in analyses)],
        ["Most likely", *("not assessed" if item.declined else "; ".join(
            f"{name} {probability:.0%}" for _, name, probability in item.ranked_classes[:3])
                          for item in analyses)],
        ["Outcome", *(item.outcome or "not recorded" for item in analyses)],
        ["Flags", *(Paragraph(_flags(item) or "none", styles["cell"]) for item in analyses)],
        ["Model version", *(item.model_version for item in analyses)],
        ["Analysis ID", *(item.analysis_id for item in analyses)],
    ], styles, width, label_columns=(0,), column_widths=[label_width] + [column] * len(analyses),
        shaded=[((index + 1, 6), _risk_background(item)) for index, item in enumerate(analyses)])
    story = [
        Paragraph(f"{SERVICE_NAME} - comparison of lesion analyses", styles["title"]),
        Paragraph(printable(INTENDED_USE), styles["warning"]),
        Spacer(1, WARNING_GAP),
        Paragraph(printable(f"Clinician: {data.clinician}. Printed {data.printed_at}. "
                         f"{len(data.analyses)} analyses, oldest first."), styles["small"]),
        Spacer(1, 2 * mm),
        Paragraph(printable(data.summary), styles["body"]),
    ]
    if data.cautions:
        story += [Spacer(1, 2 * mm),
                  Paragraph("<br/>".join(printable(caution) for caution in data.cautions), styles["warning"]),
                  Spacer(1, WARNING_GAP)]
    story += [Paragraph(printable(data.standing_caution), styles["small"]), Spacer(1, 2 * mm), table,
              Spacer(1, 2 * mm), Paragraph(printable(MODEL_LIMITS), styles["small"]),
              Spacer(1, 2 * mm), _assessment(styles, width)]
    patients = ", ".join(dict.fromkeys(item.patient_ref for item in analyses))
    header = (f"Comparison · patient {patients} · {analyses[0].created_at} to {analyses[-1].created_at} · "
              f"analyses {', '.join(item.analysis_id for item in analyses)}")
    return _build(story, page_size, f"{SERVICE_NAME} comparison of {len(data.analyses)} analyses", header)


# Room above the story for the running header on every page.
HEADER_ROOM = 16 * mm


def _build(story, page_size, title: str, header: str) -> bytes:
    """The story as PDF bytes; every page carries `header` (who and what the page is about, so a
    loose page 2 is never anonymous) and a footer "page N of M"."""
    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=page_size, leftMargin=16 * mm,
                                 rightMargin=16 * mm, topMargin=HEADER_ROOM, bottomMargin=13 * mm,
                                 title=title, author=SERVICE_NAME)
    header_style = _styles()["header"]

    def running_header(canvas, _document):
        paragraph = Paragraph(printable(header), header_style)
        _, height = paragraph.wrap(page_size[0] - 32 * mm, HEADER_ROOM)
        paragraph.drawOn(canvas, 16 * mm, page_size[1] - 6 * mm - height)

    document.build(story, onFirstPage=running_header, onLaterPages=running_header,
                   canvasmaker=_NumberedCanvas)
    return buffer.getvalue()


class _NumberedCanvas(Canvas):
    """A canvas that holds its pages back until the last, so each footer can say "page N of M"."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._held_pages = []

    def showPage(self):
        self._held_pages.append(dict(self.__dict__))
        self._startPage()

    def save(self):
        total = len(self._held_pages)
        for number, state in enumerate(self._held_pages, start=1):
            self.__dict__.update(state)
            self.setFont(FONT, 7.5)
            self.drawString(16 * mm, 8 * mm, f"{SERVICE_NAME} - decision support, not a diagnosis.")
            self.drawRightString(self._pagesize[0] - 16 * mm, 8 * mm, f"Page {number} of {total}")
            super().showPage()
        super().save()


def _assessment(styles, width) -> KeepTogether:
    """The part the clinician fills in by hand, so never split across pages."""
    return KeepTogether([
        Paragraph("Clinician's assessment", styles["subheading"]),
        _table([["Clinical impression", ""], ["Histology / follow-up", ""],
                ["Name and signature", ""], ["Date", ""]], styles, width, label_columns=(0,),
               row_height=8 * mm)])


def _scaled(jpeg: bytes, size: tuple[int, int], max_width: float, max_height: float) -> Image:
    scale = min(max_width / size[0], max_height / size[1])
    return Image(io.BytesIO(jpeg), size[0] * scale, size[1] * scale)


def _styles() -> dict:
    base = getSampleStyleSheet()
    return {
        "title": ParagraphStyle("title", parent=base["Title"], fontName=BOLD_FONT, fontSize=16, spaceAfter=4),
        "heading": ParagraphStyle("heading", parent=base["Heading2"], fontName=BOLD_FONT, fontSize=13,
                                  spaceAfter=2),
        "subheading": ParagraphStyle("subheading", parent=base["Heading3"], fontName=BOLD_FONT,
                                     fontSize=11, spaceAfter=2),
        "body": ParagraphStyle("body", parent=base["BodyText"], fontName=FONT, fontSize=9.5, leading=12),
        "cell": ParagraphStyle("cell", parent=base["BodyText"], fontName=FONT, fontSize=9, leading=11),
        "header": ParagraphStyle("header", parent=base["BodyText"], fontName=FONT, fontSize=7.5, leading=9,
                                 textColor=colors.HexColor("#333333")),
        "small": ParagraphStyle("small", parent=base["BodyText"], fontName=FONT, fontSize=8, leading=10,
                                textColor=colors.HexColor("#333333")),
        "warning": ParagraphStyle("warning", parent=base["BodyText"], fontName=FONT, fontSize=8.5, leading=11,
                                  backColor=colors.HexColor("#fff4e5"), borderPadding=4,
                                  borderColor=colors.HexColor("#b35c00"), borderWidth=0.6),
    }


def _sentences(reasons: list[str]) -> str:
    # The reasons are sentences (gate.REASONS); end each with one full stop.
    return " ".join(printable(reason.rstrip(". ")) + "." for reason in reasons)


def _flags(analysis: PrintedAnalysis) -> str:
    """Why the image cannot be assessed, why the answer is uncertain, and the notices, as one
    paragraph's markup, a line each; "" when there are none."""
    lines = []
    if analysis.declined:
        lines.append(f"<b>CANNOT ASSESS - RETAKE</b> - {_sentences(analysis.indeterminate_reasons)}")
    if analysis.uncertainty_reasons:
        lines.append(f"<b>UNCERTAIN</b> - {_sentences(analysis.uncertainty_reasons)} The recommendation "
                     "still follows the malignant and melanoma probabilities.")
    lines += [f"<b>NOTE</b> - {printable(notice)}" for notice in analysis.notices]
    return "<br/>".join(lines)


def _table(rows, styles, width, label_columns=(0, 2), row_height=None, column_widths=None,
           shaded=()) -> Table:
    """A grid with shaded label columns. Values are printed as escaped text, except flowables
    (images, paragraphs), which are placed as they are. Equal columns unless `column_widths`;
    `shaded`: ((column, row), colour) for cells with a background of their own."""
    cells = [[value if isinstance(value, Flowable) else Paragraph(printable(str(value)), styles["cell"])
              for value in row] for row in rows]
    columns = len(rows[0])
    table = Table(cells, colWidths=column_widths or [width / columns] * columns,
                  rowHeights=[row_height] * len(rows) if row_height else None)
    commands = [("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#999999")),
                ("VALIGN", (0, 0), (-1, -1), "TOP")]
    commands += [("BACKGROUND", (column, 0), (column, -1), colors.HexColor("#eef2f5"))
                 for column in label_columns]
    commands += [("BACKGROUND", cell, cell, colour) for cell, colour in shaded]
    table.setStyle(TableStyle(commands))
    return table


def _images(data: ReportData, width) -> Table:
    box = (width - 6 * mm) / 2
    # At most 42 mm tall, so that a typical report (a short note) stays on one A4 sheet.
    table = Table([[_scaled(data.image_jpeg, data.image_size, box, 42 * mm),
                    _scaled(data.heatmap_jpeg, data.image_size, box, 42 * mm)],
                   ["Image as analysed", f"{HEATMAP_NAME} over the image"]],
                  colWidths=[box + 3 * mm] * 2)
    table.setStyle(TableStyle([("ALIGN", (0, 0), (-1, -1), "CENTER"), ("FONTNAME", (0, 1), (-1, 1), FONT),
                               ("FONTSIZE", (0, 1), (-1, 1), 8)]))
    return table


def _risk_cell(analysis: PrintedAnalysis, styles) -> Paragraph:
    """The risk category in bold, in its colour: the one line a reader must not miss."""
    colour = RISK_COLOURS[analysis.risk_code][0]
    return Paragraph(f'<font color="{colour}"><b>{printable(analysis.risk_label)}</b></font>', styles["cell"])


def _risk_background(analysis: PrintedAnalysis):
    return colors.HexColor(RISK_COLOURS[analysis.risk_code][1])
