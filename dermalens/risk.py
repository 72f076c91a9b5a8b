"""Risk categories: from calibrated probabilities to a recommended action.

Three questions are answered apart (docs: ../shared/docs/clinical.md), as regulated lesion tools
report them:

1. Can the image be assessed? If the image gate declines it, the category is "indeterminate"
   ("cannot assess - retake") and nothing else is decided.
2. How sure is the model? A low top-class probability is an "uncertain" flag on the answer
   (`assessment.Assessment.confidence_reasons`); it never declines and never lowers a referral:
   a retake does not make the model surer, and an uncertain melanoma must still be referred.
3. What should happen? The category follows the melanoma, keratinocyte-cancer and malignant
   probabilities whatever the confidence (`assess_risk`).
"""

from dataclasses import dataclass

from dermalens.lesions import MALIGNANT_CLASSES

KERATINOCYTE_CLASSES = ("akiec", "bcc")
# Whatever a model card says, a lesion this likely to be malignant is never "monitor".
MONITOR_CEILING = 0.5


@dataclass(frozen=True)
class RiskCategory:
    code: str
    label: str
    action: str
    refers: bool


RISK_CATEGORIES = {
    category.code: category for category in (
        RiskCategory("urgent", "Urgent referral: suspected melanoma",
                     "Refer urgently to dermatology on the suspected-melanoma pathway (in the UK, the "
                     "2-week-wait pathway).", refers=True),
        RiskCategory("keratinocyte", "Referral: suspected keratinocyte cancer",
                     "Refer to dermatology for a suspected basal cell carcinoma, actinic keratosis or "
                     "intraepithelial carcinoma (Bowen's). Basal cell carcinoma is usually routine; refer "
                     "Bowen's or a suspected squamous cell carcinoma urgently where local guidance says so.",
                     refers=True),
        RiskCategory("review", "Refer for review: malignancy not ruled out",
                     "A benign diagnosis is most likely, but the malignant probability is too high to "
                     "monitor: refer for review by a dermatologist. If in doubt, refer.", refers=True),
        RiskCategory("monitor", "Monitor",
                     "Benign features are most likely and the malignant probability is low. Reassure, "
                     "document, and review if the lesion changes.", refers=False),
        RiskCategory("indeterminate", "Cannot assess - retake",
                     "This image cannot be assessed (see the reasons). Retake the dermoscopic image; "
                     "until then rely on clinical assessment. No diagnosis is given for this image.",
                     refers=False),
        # Analyses recorded before keratinocyte referrals and reviews were told apart.
        RiskCategory("routine", "Routine referral (earlier version)",
                     "Refer routinely to dermatology for assessment of a possible keratinocyte "
                     "cancer or an uncertain lesion.", refers=True),
    )
}
# What new analyses can be given (the history filter offers these, plus any stored legacy code).
CURRENT_CATEGORIES = ("urgent", "keratinocyte", "review", "monitor", "indeterminate")


def assess_risk(probabilities: dict[str, float], thresholds: dict, declined: bool = False) -> str:
    """Return the risk category code for one analysis.

    :param probabilities: calibrated probability per class code.
    :param thresholds: from the model card: `urgent_melanoma` (melanoma probability for the
        melanoma pathway), `referral_keratinocyte` (BCC + AKIEC probability for a keratinocyte
        referral) and `monitor_max_malignant`; a card without the first two uses its
        `urgent_malignant` for both.
    :param declined: the image gate declined the image: "indeterminate", nothing else decided.
    """
    if declined:
        return "indeterminate"
    top_class = max(probabilities, key=probabilities.get)
    melanoma = probabilities["mel"]
    keratinocyte = sum(probabilities[name] for name in KERATINOCYTE_CLASSES)
    malignant = sum(probabilities[name] for name in MALIGNANT_CLASSES)
    if top_class == "mel" or melanoma >= thresholds.get("urgent_melanoma", thresholds["urgent_malignant"]):
        return "urgent"
    if top_class in KERATINOCYTE_CLASSES or keratinocyte >= thresholds.get(
            "referral_keratinocyte", thresholds["urgent_malignant"]):
        return "keratinocyte"
    if malignant >= min(thresholds["monitor_max_malignant"], MONITOR_CEILING):
        return "review"
    return "monitor"
