"""A fake classifier with the real one's interface, so web tests run without TensorFlow.

Its answer depends on the image content (redness of the centre), so different images give different,
checkable results.
"""

import numpy as np

from dermalens import preprocessing
from dermalens.inference import ModelInfo, Prediction
from dermalens.lesions import CLASSES

FAKE_THRESHOLDS = {"urgent_malignant": 0.6, "monitor_max_malignant": 0.2}


class FakeGate:
    """Declines every image with the given reasons (an empty list accepts everything)."""

    def __init__(self, reasons: list[str]):
        self._reasons = list(reasons)

    def reasons(self, prepared, embeddings) -> list[str]:
        return list(self._reasons)


class FakeClassifier:
    def __init__(self, fail: bool = False, gate_reasons: list[str] | None = None):
        self.info = ModelInfo(name="fake-resnet", version="0.0-test", sha256="f" * 64,
                              input_size=32, thresholds=dict(FAKE_THRESHOLDS),
                              card={"validation": {}})
        self.device = "CPU"
        self.gate = FakeGate(gate_reasons) if gate_reasons else None
        self.fail = fail
        self.calls = 0

    def _probabilities(self, rgb) -> np.ndarray:
        if self.fail:
            raise RuntimeError("simulated inference failure")
        height, width = rgb.shape[:2]
        centre = rgb[height // 4:3 * height // 4, width // 4:3 * width // 4].astype(float)
        redness = (centre[..., 0].mean() - centre[..., 2].mean()) / 255.0  # in [-1, 1]
        logits = np.full(len(CLASSES), -2.0)
        # Red images look like melanoma, blue-ish ones like nevi.
        logits[CLASSES.index("mel")] = 4.0 * redness
        logits[CLASSES.index("nv")] = -4.0 * redness + 1.0
        exp = np.exp(logits - logits.max())
        return exp / exp.sum()

    def analyse(self, prepared, age=None, sex=None, site=None, explain=True) -> Prediction:
        self.calls += 1
        probabilities = self._probabilities(prepared.pixels)
        grid = np.linspace(-1, 1, self.info.input_size)
        heatmap = np.exp(-(grid[None] ** 2 + grid[:, None] ** 2) * 3).astype(np.float32)
        top = CLASSES[int(np.argmax(probabilities))]
        # The real colour correction's gains, so notices can be tested end to end.
        gains = preprocessing.network_input(prepared, self.info.input_size).gains
        return Prediction(probabilities={c: float(p) for c, p in zip(CLASSES, probabilities)},
                          heatmap=heatmap if explain else None, heatmap_class=top,
                          colour_gains=tuple(float(gain) for gain in gains))
