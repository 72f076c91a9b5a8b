"""The app's inference path for one image: decode, prepare once, classify, gate, decide.

Shared by the web app, the API, `python -m dermalens.predict` and the evaluation tools, so each of
them judges an image exactly as a clinician's upload is judged. Plain data in and out: no Flask,
no database.
"""

from dataclasses import dataclass

import numpy as np

from dermalens import gate, preprocessing, timing
from dermalens.inference import Classifier, Prediction
from dermalens.risk import assess_risk


def decode_for_analysis(image: bytes) -> np.ndarray:
    """Untrusted upload bytes -> the RGB array that is analysed and stored (longer side capped).

    :raise preprocessing.InvalidImage: not an acceptable image.
    """
    return preprocessing.decode_image(image, max_side=preprocessing.DISPLAY_MAX_SIDE)


@dataclass(frozen=True)
class Assessment:
    """The decision for one image: the three questions of `dermalens.risk`, answered apart.

    `gate_reasons`: why the image cannot be assessed (quality or scope; any reason declines it);
    `confidence_reasons`: why the model's answer is uncertain (a flag on an answer, never a
    decline; empty for a declined image); `risk_category`: what should happen; `notices`:
    remarks that leave the answer standing (`gate.colour_notices`). `prepared` is the image as
    the network and the gate saw it, for the heatmap overlay.
    """

    prediction: Prediction
    prepared: preprocessing.PreparedImage
    risk_category: str
    gate_reasons: list[str]
    confidence_reasons: list[str]
    notices: list[str]

    @property
    def declined(self) -> bool:
        """The image cannot be assessed: no class is to be shown as a result."""
        return bool(self.gate_reasons)

    @property
    def uncertain(self) -> bool:
        return bool(self.confidence_reasons)


def assess_image(classifier: Classifier, rgb: np.ndarray, age: int | None = None,
                 sex: str | None = None, site: str | None = None, explain: bool = True) -> Assessment:
    """Assess one decoded image (`decode_for_analysis`) with its optional patient metadata."""
    with timing.stage("preprocess"):
        prepared = preprocessing.prepare(rgb)
    prediction = classifier.analyse(prepared, age=age, sex=sex, site=site, explain=explain)
    with timing.stage("gate"):
        gate_reasons = classifier.gate.reasons(prepared, prediction.embeddings) if classifier.gate else []
        min_confidence = classifier.info.thresholds.get("min_confidence")
        confidence_reasons = ([] if gate_reasons or min_confidence is None
                              else gate.confidence_reasons(prediction.probabilities, min_confidence))
    risk_category = assess_risk(prediction.probabilities, classifier.info.thresholds,
                                declined=bool(gate_reasons))
    return Assessment(prediction, prepared, risk_category, gate_reasons, confidence_reasons,
                      gate.colour_notices(prediction.colour_gains))
