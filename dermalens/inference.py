"""The classifier service: load the shipped model once, then analyse one image at a time.

A model card describes one network (its weights `NAME.keras` beside it) or an ensemble of
several (`members`, each with its own weights file, temperature and gate). `Classifier` is the
interface the web app depends on; `KerasClassifier` is the real one and the tests inject a small
fake with the same methods. Everything here takes and returns plain data (NumPy arrays, dicts,
dataclasses) and knows nothing of Flask.
"""

import hashlib
import json
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from dermalens import config, preprocessing, timing
from dermalens.lesions import CLASSES, MALIGNANT_CLASSES
from dermalens.preprocessing import PreparedImage

if TYPE_CHECKING:
    from dermalens.gate import CombinedGate


class ModelLoadError(RuntimeError):
    """The model cannot be served (missing file, checksum mismatch, unreadable card)."""


@dataclass(frozen=True)
class ModelInfo:
    """What the app shows and records about the model that produced an analysis."""

    name: str
    version: str
    # The weights' SHA-256; for an ensemble, `ensemble_sha256` of its members' (one identity
    # for what produced an analysis, recorded with it).
    sha256: str
    input_size: int
    thresholds: dict
    card: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class MemberSpec:
    """One network of a model card, its weights file verified against the card's SHA-256."""

    weights_path: Path
    sha256: str
    temperature: float
    gate: dict | None  # the card's gate section for this network (file, sha256, thresholds, ...)


@dataclass(frozen=True)
class Prediction:
    """Calibrated class probabilities and a heatmap (LayerCAM, of the Grad-CAM
    family) for the most likely class. For an ensemble the probabilities are the mean of the
    members' calibrated probabilities and the heatmap is the first member's, for the ensemble's
    most likely class.

    `heatmap` is float32 in [0, 1] over the network's input square (input_size x input_size),
    i.e. over the prepared image's analysed square (`PreparedImage.square`).
    """

    probabilities: dict[str, float]
    heatmap: np.ndarray | None
    heatmap_class: str
    # Each network's pooled features, in member order (for the scope gate); None for
    # classifiers without them.
    embeddings: tuple[np.ndarray, ...] | None = None
    # The (R, G, B) gains that brought the image into the training colour range before the
    # network saw it (`preprocessing.NetworkInput.gains`; all 1 when none were needed); None for
    # classifiers that do not correct colours.
    colour_gains: tuple[float, float, float] | None = None

    @property
    def top_class(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    @property
    def malignant_probability(self) -> float:
        return float(sum(self.probabilities[name] for name in MALIGNANT_CLASSES))


class Classifier(Protocol):
    info: ModelInfo
    device: str
    gate: "CombinedGate | None"

    def analyse(self, prepared: PreparedImage, age=None, sex=None, site=None,
                explain: bool = True) -> Prediction:
        """Calibrated probabilities for one prepared image (`preprocessing.prepare`) and, if
        `explain`, the LayerCAM heatmap of the top class (else `heatmap` is None)."""


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """Probabilities of softmax(logits / temperature) over the last axis, float64."""
    scaled = np.asarray(logits, np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ensemble_sha256(member_digests: list[str]) -> str:
    """The identity of an ensemble: the SHA-256 of its members' SHA-256 digests, one per line,
    in member order."""
    return hashlib.sha256("\n".join(member_digests).encode("ascii")).hexdigest()


def read_model_card(card_path: str | Path, accepted_versions: Collection[int] = (preprocessing.VERSION,)
                    ) -> tuple[ModelInfo, list[MemberSpec]]:
    """Read the model card and check the weights it describes.

    A card without `members` describes one network, its weights `NAME.keras` beside the card;
    with `members`, each entry names its weights file (beside the card), its SHA-256, its
    temperature and its gate, and the card's own `sha256` is `ensemble_sha256` of theirs.

    :return: (model info, the networks in member order, weights verified)
    :raise ModelLoadError: card or weights missing, card unreadable, a weights file's SHA-256
        differs from the card (a tampered or half-copied file is never loaded), or the card's
        preprocessing version is not one of `accepted_versions` (this code's alone, unless a
        training tool reads older cards on purpose: the network would see unfamiliar inputs).
    """
    card_path = Path(card_path)
    if not card_path.is_file():
        raise ModelLoadError(f"Model card not found: {card_path}. Train a model "
                             "(python -m dermalens.train) or set DERMALENS_MODEL_CARD.")
    try:
        card = json.loads(card_path.read_text())
        info = ModelInfo(name=card["name"], version=card["version"], sha256=card["sha256"],
                         input_size=int(card["input_size"]), thresholds=dict(card["thresholds"]), card=card)
        entries = card["members"] if "members" in card else [{**card, "weights": f"{card_path.stem}.keras"}]
        members = [MemberSpec(weights_path=card_path.parent / Path(entry["weights"]).name,
                              sha256=entry["sha256"], temperature=float(entry["temperature"]),
                              gate=entry.get("gate"))
                   for entry in entries]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ModelLoadError(f"Model card {card_path} is not valid: {error!r}") from error
    if not members:
        raise ModelLoadError(f"Model card {card_path} lists no member networks.")
    if list(card.get("classes", [])) != list(CLASSES):
        raise ModelLoadError(f"Model card {card_path} has a different class order than {CLASSES}.")
    if card.get("preprocessing_version") not in accepted_versions:
        raise ModelLoadError(f"Model card {card_path} was fitted with preprocessing version "
                             f"{card.get('preprocessing_version')!r}, but this version of DermaLens "
                             f"applies version {preprocessing.VERSION}. Retrain, or run the "
                             "DermaLens version the model was trained with.")
    if "members" in card and info.sha256 != ensemble_sha256([member.sha256 for member in members]):
        raise ModelLoadError(f"Model card {card_path}: its sha256 is not the digest of its members' "
                             "SHA-256 (the card was edited by hand?). Refusing to load it.")
    for member in members:
        if not member.weights_path.is_file():
            raise ModelLoadError(f"Model weights not found: {member.weights_path} (described by {card_path}).")
        actual = sha256_of_file(member.weights_path)
        if actual != member.sha256:
            raise ModelLoadError(f"Model weights {member.weights_path} have SHA-256 {actual}, but the model "
                                 f"card says {member.sha256}. Refusing to load a file that is not the "
                                 "released one.")
    return info, members


# Test-time augmentation: the image itself and its horizontal, vertical and double flips
# (dermoscopic images have no "up"), as the spatial axes (0 = rows, 1 = columns) each view flips.
# A view's heatmap is flipped back along the same axes before the heatmaps are averaged.
TTA_FLIPS = ((), (1,), (0,), (0, 1))


class NetworkRunner:
    """The network's compiled forward pass, with optional test-time augmentation (TTA).

    Returns logits and the pooled embedding, each averaged over the views (`TTA_FLIPS`, or the
    image alone without TTA), and every view's feature map at the layer the heatmap explains
    (`network.explained_feature_layer`). One traced graph
    serves every request; no per-call model building.
    """

    EMBEDDING_LAYER = "pool"

    def __init__(self, model, input_size: int, tta: bool):
        import keras
        import tensorflow as tf

        from dermalens.network import explained_feature_layer

        # A second functional view on the same layers (the loaded model is never modified).
        network = keras.Model(model.inputs, [model.output, model.get_layer(self.EMBEDDING_LAYER).output,
                                             model.get_layer(explained_feature_layer(model)).output])
        self.flips = TTA_FLIPS if tta else TTA_FLIPS[:1]

        def forward(images, metadata):
            views = [tf.reverse(images, [axis + 1 for axis in flip]) if flip else images
                     for flip in self.flips]
            count = len(views)
            logits, embeddings, feature_maps = network(
                {"image": tf.concat(views, 0), "metadata": tf.tile(metadata, [count, 1])}, training=False)
            batch = tf.shape(images)[0]
            return (tf.reduce_mean(tf.reshape(logits, [count, batch, -1]), 0),
                    tf.reduce_mean(tf.reshape(embeddings, [count, batch, -1]), 0),
                    feature_maps)

        self._forward = tf.function(forward, input_signature=[
            tf.TensorSpec((None, input_size, input_size, 3), tf.float32),
            tf.TensorSpec((None, preprocessing.METADATA_SIZE), tf.float32)])

    def __call__(self, images: np.ndarray, metadata: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(logits, embeddings) for a batch."""
        logits, embeddings, _ = self._forward(images, metadata)
        return logits.numpy(), embeddings.numpy()

    def with_feature_maps(self, image: np.ndarray, metadata: np.ndarray):
        """(logits, embeddings, feature maps) for a batch of one image; the feature maps (at the
        explained layer) are one per view, in the order of `self.flips`, each as the network saw
        its flipped view."""
        logits, embeddings, feature_maps = self._forward(image, metadata)
        return logits.numpy(), embeddings.numpy(), feature_maps.numpy()


def load_gate(card_path: Path, section: dict | None):
    """The fitted gate a card's gate section names (its file beside the card), checksum-verified;
    None if there is no section.

    :raise ModelLoadError: gate file missing or not the one the card describes, or fitted on
        other statistics than this code computes.
    """
    from dermalens.gate import STATISTIC_NAMES, Gate

    if not section:
        return None
    gate_path = card_path.parent / Path(section["file"]).name
    if not gate_path.is_file():
        raise ModelLoadError(f"Gate parameters not found: {gate_path} (described by {card_path}).")
    if sha256_of_file(gate_path) != section["sha256"]:
        raise ModelLoadError(f"Gate parameters {gate_path} do not match the SHA-256 in {card_path}.")
    if section.get("statistics") != list(STATISTIC_NAMES):
        raise ModelLoadError(f"The gate in {card_path} was fitted on other image statistics than this "
                             "version of DermaLens computes. Refit it with python -m "
                             "dermalens.training.calibrate, or run the DermaLens version it was fitted with.")
    return Gate.load(gate_path, section["thresholds"])


class Network:
    """One member network, loaded: its compiled forward pass, its temperature and its gate."""

    def __init__(self, spec: MemberSpec, card_path: Path, input_size: int, tta: bool):
        import keras

        self.temperature = spec.temperature
        self.gate = load_gate(card_path, spec.gate)
        # safe_mode refuses lambda layers and arbitrary code in the archive (CVE-2025-1550 class).
        self.model = keras.models.load_model(spec.weights_path, compile=False, safe_mode=True)
        self.runner = NetworkRunner(self.model, input_size, tta=tta)


class KerasClassifier:
    """The trained Keras ResNet, or an ensemble of them, loaded once per process and safe to
    call from several threads.

    An ensemble's answer is the mean of its members' calibrated probabilities (each member's own
    temperature, test-time augmentation as the card says); its gate declines an image any
    member's gate declines (`gate.CombinedGate`), and the heatmap is the first member's LayerCAM
    of the ensemble's most likely class.
    """

    def __init__(self, card_path: str | Path, accepted_versions: Collection[int] = (preprocessing.VERSION,)):
        """:param accepted_versions: as `read_model_card`; whatever the card's version, images go
            through this code's preprocessing."""
        from dermalens.gate import CombinedGate

        card_path = Path(card_path)
        self.info, specs = read_model_card(card_path, accepted_versions)
        config.quiet_tensorflow()
        import tensorflow as tf
        from tf_keras_vis.layercam import Layercam

        from dermalens.network import explanation_tail

        tta = self.info.card.get("tta", False)
        self.members = [Network(spec, card_path, self.info.input_size, tta) for spec in specs]
        gates = [member.gate for member in self.members]
        if any(gates) and not all(gates):
            raise ModelLoadError(f"Model card {card_path}: some members have a gate and some do not.")
        self.gate = CombinedGate(gates) if all(gates) else None
        self.explained = self.members[0]
        # The heatmap runs on the explained network's tail alone (last stage and head), fed the
        # feature maps its runner already computed: one forward pass of the body per request,
        # and no gradients through it. The tail outputs logits, so no activation swap is needed,
        # and it is made of the served model's own layers, which are never modified. Built once.
        self._layercam = Layercam(explanation_tail(self.explained.model), clone=False)
        self._layercam_lock = threading.Lock()
        self.device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
        size = self.info.input_size
        # Trace and build once, at startup.
        self.analyse(preprocessing.prepare(np.zeros((size, size, 3), np.uint8)))

    def probabilities(self, images: np.ndarray, metadata: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (batch, classes) of network input tensors
        (`preprocessing.network_input`) and encoded metadata: the members' mean."""
        return np.mean([softmax(member.runner(images, metadata)[0], member.temperature)
                        for member in self.members], axis=0)

    def analyse(self, prepared, age=None, sex=None, site=None, explain: bool = True) -> Prediction:
        with timing.stage("preprocess"):
            network_input = preprocessing.network_input(prepared, self.info.input_size)
            image = network_input.tensor[None]
            metadata = preprocessing.encode_metadata(age, sex, site)[None]
        with timing.stage("network"):
            member_probabilities, embeddings = [], []
            for member in self.members:
                if member is self.explained:
                    logits, embedding, feature_maps = member.runner.with_feature_maps(image, metadata)
                else:
                    logits, embedding = member.runner(image, metadata)
                member_probabilities.append(softmax(logits[0], member.temperature))
                embeddings.append(embedding[0])
            probabilities = np.mean(member_probabilities, axis=0)
        top_index = int(np.argmax(probabilities))
        with timing.stage("heatmap"):
            heatmap = self._heatmap(feature_maps, metadata, top_index) if explain else None
        return Prediction(
            probabilities={name: float(p) for name, p in zip(CLASSES, probabilities)},
            heatmap=heatmap,
            heatmap_class=CLASSES[top_index],
            embeddings=tuple(embeddings),
            colour_gains=tuple(float(gain) for gain in network_input.gains),
        )

    def _heatmap(self, feature_maps, metadata, class_index: int) -> np.ndarray:
        """LayerCAM (a Grad-CAM variant; Jiang et al. 2021) of the explained (first) network's
        logit for the class the app reports.

        At each cell of the explained feature map (`network.explained_feature_layer`), every
        channel's activation is weighted by its own positive gradient of the class logit and the
        channels summed. (Grad-CAM's one weight per channel made a poor map at that layer:
        docs/model-history.md.)
        The network's logits are the mean of the TTA views', whose gradient at each view is the
        view's own divided by the number of views, so its map is the mean of the views' maps, each
        flipped back: what this returns, rectified and scaled to [0, 1]. (The map of the unflipped
        view alone explained a quarter of the prediction; it did not flip with the image and
        pointed at the lesion less often, as measured in docs/model-history.md.)"""
        from tf_keras_vis.utils.scores import CategoricalScore

        from dermalens.network import EXPLAINED_LAYER

        flips = self.explained.runner.flips
        with self._layercam_lock:  # tf-keras-vis builds a Keras sub-model on each call
            cams = self._layercam(CategoricalScore([class_index]),
                                  [feature_maps, np.repeat(metadata, len(flips), axis=0)],
                                  penultimate_layer=EXPLAINED_LAYER, expand_cam=False,
                                  seek_penultimate_conv_layer=False, activation_modifier=None,
                                  normalize_cam=False)
        cams = np.asarray(cams[0] if isinstance(cams, list) else cams, np.float32)
        cam = np.mean([np.flip(view, flip) for view, flip in zip(cams, flips)], axis=0)
        return upsample_heatmap(cam, self.info.input_size)


def upsample_heatmap(cam: np.ndarray, size: int) -> np.ndarray:
    """Coarse class-activation map -> (size, size) float32 in [0, 1]; never NaN.

    An all-zero (or non-finite) map stays all zeros instead of dividing by zero.
    """
    import cv2

    cam = np.nan_to_num(np.asarray(cam, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    cam = np.maximum(cam, 0.0)
    peak = float(cam.max()) if cam.size else 0.0
    cam = cam / peak if peak > 0 else np.zeros_like(cam)
    resized = cv2.resize(cam, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(resized, 0.0, 1.0).astype(np.float32)
