"""Risk categories: from calibrated probabilities to a recommended action.

The category is a separate decision from the softmax, following how regulated lesion tools
report: a malignant top class or a high malignant probability leads to referral; only a
confidently benign result leads to "monitor"; an unusable or uncertain result is "indeterminate"
and carries its reasons.
"""

from dataclasses import dataclass

from dermalens.lesions import MALIGNANT_CLASSES


@dataclass(frozen=True)
class RiskCategory:
    code: str
    label: str
    action: str


RISK_CATEGORIES = {
    category.code: category for category in (
        RiskCategory("urgent", "Urgent referral",
                     "Refer urgently to dermatology (suspected melanoma pathway)."),
        RiskCategory("routine", "Routine referral",
                     "Refer routinely to dermatology for assessment of a possible keratinocyte "
                     "cancer or an uncertain lesion."),
        RiskCategory("monitor", "Monitor",
                     "Benign features are most likely. Reassure, document, and review if the "
                     "lesion changes."),
        RiskCategory("indeterminate", "Indeterminate - retake or review",
                     "The tool cannot assess this image reliably. Retake the dermoscopic image or "
                     "rely on clinical review; do not use the probabilities for a decision."),
    )
}


def assess_risk(probabilities: dict[str, float], thresholds: dict,
                indeterminate_reasons: list[str] = ()) -> str:
    """Return the risk category code for one analysis.

    :param probabilities: calibrated probability per class code.
    :param thresholds: from the model card: `urgent_malignant` and `monitor_max_malignant`.
    :param indeterminate_reasons: reasons the image or the answer is not reliable; any reason
        makes the result indeterminate.
    """
    if indeterminate_reasons:
        return "indeterminate"
    top_class = max(probabilities, key=probabilities.get)
    malignant = sum(probabilities[name] for name in MALIGNANT_CLASSES)
    if top_class == "mel" or malignant >= thresholds["urgent_malignant"]:
        return "urgent"
    if top_class in MALIGNANT_CLASSES or malignant >= thresholds["monitor_max_malignant"]:
        return "routine"
    return "monitor"
