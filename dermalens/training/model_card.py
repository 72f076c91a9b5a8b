"""Render the human model card (models/README.md) from the machine one (models/NAME.json).

    python -m dermalens.training.model_card --model-card models/NAME.json \
        [--out-of-scope RESULT.json] [--size-and-crop "DESCRIPTION=OUT/metrics.json" ...]
        [--other-device "DESCRIPTION=OUT/metrics.json" ...] [--heatmap-quality RESULT.json]

The text comes from the template `model_card.md.j2` beside this module, fed only by the card's
JSON, so the two never disagree and no figure is typed into code. With --out-of-scope (the
out_of_scope.json written by `dermalens.evaluate --out-of-scope`), the figures are also stored in
the JSON card; likewise each --size-and-crop (the metrics.json of a labelled `dermalens.evaluate`
run on resized or re-cropped copies of the validation images) and each --other-device (one on
another clinic's images, such as PH2, or copies of them). With --heatmap-quality (what
`python -m tools.heatmap_quality --out` wrote for the validation images), the share of images
whose heatmap peak fell beside the lesion is stored with the card's heatmap section.
"""

import argparse
import json
import sys
from pathlib import Path

import jinja2

from dermalens.lesions import CLASS_NAMES
from dermalens.training import metrics

TEMPLATE = Path(__file__).with_name("model_card.md.j2")


def _fmt(value, digits=3):
    return "n/a" if value is None else f"{value:.{digits}f}"


def _environment() -> jinja2.Environment:
    # Markdown, not HTML: nothing to escape, and the card is the project's own data.
    environment = jinja2.Environment(autoescape=False, keep_trailing_newline=True,  # nosec B701
                                     undefined=jinja2.ChainableUndefined)
    environment.filters.update(
        fmt=_fmt,
        percent=lambda value: f"{value:.0%}",
        with_interval=lambda value, intervals, name: _fmt(value) + metrics.interval_text(intervals, name))
    return environment


def render(card: dict) -> str:
    """The model card's Markdown text for a card's JSON content."""
    template = _environment().from_string(TEMPLATE.read_text())
    return template.render(card=card, class_names=CLASS_NAMES)


def size_and_crop_row(description: str, figures: dict) -> dict:
    """One row of the "other sizes, crops and colours" table from an evaluate metrics.json."""
    return {"description": description, "n": figures["n"],
            "balanced_accuracy": figures["balanced_accuracy"], "melanoma_recall": figures["recall"]["mel"],
            "auc_malignant": figures["auc_malignant"], "ece": figures["ece"],
            "indeterminate_rate": figures["indeterminate_rate"]}


def other_device_row(description: str, figures: dict) -> dict:
    """One row of the "other clinics and dermoscopes" table from an evaluate metrics.json."""
    return {"description": description, "n": figures["n"],
            "balanced_accuracy": figures["balanced_accuracy"], "melanoma_recall": figures["recall"]["mel"],
            "auc_melanoma": figures["auc_melanoma"], "ece": figures["ece"],
            "indeterminate_rate": figures["indeterminate_rate"], "uncertain_rate": figures["uncertain_rate"]}


def _pairs(parser, option: str, items: list[str]) -> list[tuple[str, Path]]:
    pairs = [item.rpartition("=") for item in items]
    if any(not description or not path for description, _, path in pairs):
        parser.error(f"{option} takes DESCRIPTION=METRICS_JSON")
    return [(description, Path(path)) for description, _, path in pairs]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-card", required=True, type=Path)
    parser.add_argument("--out-of-scope", type=Path)
    parser.add_argument("--size-and-crop", action="append", default=[], metavar="DESCRIPTION=METRICS_JSON",
                        help="figures of the validation images at another size, crop or colour (repeatable)")
    parser.add_argument("--other-device", action="append", default=[], metavar="DESCRIPTION=METRICS_JSON",
                        help="figures of another clinic's images (e.g. PH2) or copies of them (repeatable)")
    parser.add_argument("--heatmap-quality", type=Path, help="tools.heatmap_quality --out of the validation images")
    args = parser.parse_args(argv)
    pairs = _pairs(parser, "--size-and-crop", args.size_and_crop)
    devices = _pairs(parser, "--other-device", args.other_device)
    inputs = [args.model_card, *(path for path in (args.out_of_scope, args.heatmap_quality) if path),
              *(path for _, path in pairs + devices)]
    unreadable = [str(path) for path in inputs if not path.is_file()]
    if unreadable:
        parser.error(f"no such file: {', '.join(unreadable)}")
    card = json.loads(args.model_card.read_text())
    pointing = None
    if args.heatmap_quality:
        try:
            pointing = float(json.loads(args.heatmap_quality.read_text())["served"]["pointing"])
        except (ValueError, KeyError, TypeError):
            parser.error(f"{args.heatmap_quality}: not a tools.heatmap_quality result with a pointing rate")
    if args.out_of_scope:
        card["out_of_scope"] = json.loads(args.out_of_scope.read_text())
    if pairs:
        card["size_and_crop"] = [size_and_crop_row(description, json.loads(path.read_text()))
                                 for description, path in pairs]
    if devices:
        card["other_devices"] = [other_device_row(description, json.loads(path.read_text()))
                                 for description, path in devices]
    if pointing is not None:
        card["heatmap"] = {**card.get("heatmap", {}), "peak_off_lesion_rate": 1.0 - pointing}
    if args.out_of_scope or pairs or devices or args.heatmap_quality:
        args.model_card.write_text(json.dumps(card, indent=2) + "\n")
    readme = args.model_card.parent / "README.md"
    readme.write_text(render(card))
    print(f"wrote {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
