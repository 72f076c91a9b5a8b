"""Analyse one image from the command line and print the result as JSON.

    python -m dermalens.predict IMAGE [--age N] [--sex male|female] [--site SITE]
"""

import argparse
import json
import sys
from pathlib import Path

from dermalens.config import DEFAULT_MODEL_CARD
from dermalens.lesions import BODY_SITES, SEXES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Analyse one dermoscopic image (decision support).")
    parser.add_argument("image", type=Path)
    parser.add_argument("--age", type=int)
    parser.add_argument("--sex", choices=SEXES)
    parser.add_argument("--site", choices=BODY_SITES)
    parser.add_argument("--model-card", default=str(DEFAULT_MODEL_CARD))
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from dermalens import preprocessing
    from dermalens.assessment import assess_image, decode_for_analysis
    from dermalens.inference import KerasClassifier, ModelLoadError
    from dermalens.risk import RISK_CATEGORIES

    try:
        rgb = decode_for_analysis(args.image.read_bytes())
        classifier = KerasClassifier(args.model_card)
    except (OSError, preprocessing.InvalidImage, ModelLoadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    assessment = assess_image(classifier, rgb, args.age, args.sex, args.site, explain=False)
    prediction = assessment.prediction
    risk = RISK_CATEGORIES[assessment.risk_category]
    print(json.dumps({
        "image": str(args.image),
        "inputs": {"age": args.age, "sex": args.sex, "site": args.site},
        # A declined image gets no class: what the network computed is not a result.
        ("unreliable_probabilities" if assessment.declined else "probabilities"): {
            k: round(v, 6) for k, v in sorted(prediction.probabilities.items(), key=lambda item: -item[1])},
        "top_class": None if assessment.declined else prediction.top_class,
        "malignant_probability": None if assessment.declined else round(prediction.malignant_probability, 6),
        "risk": {"category": risk.code, "label": risk.label, "action": risk.action},
        "indeterminate": assessment.declined,
        "indeterminate_reasons": assessment.gate_reasons,
        "uncertain": assessment.uncertain,
        "uncertainty_reasons": assessment.confidence_reasons,
        "notices": assessment.notices,
        "model": {"name": classifier.info.name, "version": classifier.info.version,
                  "sha256": classifier.info.sha256},
        "disclaimer": "Decision support for qualified clinicians; not a diagnosis.",
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
