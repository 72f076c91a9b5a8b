"""The classifier network: a small ResNet (basic residual blocks) with an optional metadata input.

The model maps (image tensor, metadata vector) to 7 logits in `lesions.CLASSES` order.
Probabilities are softmax(logits / temperature); the temperature is fitted after training and
stored in the model card, so the saved network itself is never modified for calibration.
"""

import re

import keras
from keras import layers

# Name of the last convolutional feature map (the head pools it).
FEATURE_LAYER = "features"
# Name of the marker layer in `explanation_tail` at which the heatmap takes its gradients.
EXPLAINED_LAYER = "explained"
IMAGE_INPUT = "image"
METADATA_INPUT = "metadata"


def build_resnet(input_size: int, metadata_size: int, num_classes: int = 7,
                 widths: tuple[int, ...] = (32, 64, 128, 256), blocks_per_stage: int = 2,
                 dropout: float = 0.3) -> keras.Model:
    """A ResNet-18-style network (2 basic blocks per stage by default) of configurable width."""
    image = keras.Input((input_size, input_size, 3), name=IMAGE_INPUT)
    metadata = keras.Input((metadata_size,), name=METADATA_INPUT)

    x = _conv_bn_relu(image, widths[0], 3, strides=2, name="stem1")
    x = _conv_bn_relu(x, widths[0], 3, name="stem2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for stage, width in enumerate(widths):
        for block in range(blocks_per_stage):
            strides = 2 if block == 0 and stage > 0 else 1
            x = _basic_block(x, width, strides, name=f"stage{stage + 1}_block{block + 1}")
    logits = _head(x, metadata, num_classes, dropout)
    return keras.Model({IMAGE_INPUT: image, METADATA_INPUT: metadata}, logits, name="dermalens_resnet")


def _head(feature_map, metadata, num_classes: int, dropout: float):
    """Feature map + metadata -> logits: pooled features joined with a small metadata branch."""
    x = layers.Activation("linear", name=FEATURE_LAYER)(feature_map)
    pooled = layers.GlobalAveragePooling2D(name="pool")(x)
    meta = layers.Dense(32, activation="relu", name="metadata_dense")(metadata)
    joined = layers.Concatenate(name="joined")([pooled, meta])
    joined = layers.Dropout(dropout, name="dropout")(joined)
    # float32 logits even under a mixed-precision policy: softmax and loss need the range.
    return layers.Dense(num_classes, dtype="float32", name="logits")(joined)


def _conv_bn_relu(x, filters, kernel, strides=1, name=""):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _basic_block(x, filters, strides, name):
    shortcut = x
    y = _conv_bn_relu(x, filters, 3, strides=strides, name=f"{name}_a")
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                      name=f"{name}_b_conv")(y)
    # Zero-initialised last BN: each block starts as identity, which trains faster from scratch.
    y = layers.BatchNormalization(gamma_initializer="zeros", name=f"{name}_b_bn")(y)
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False,
                                 kernel_initializer="he_normal", name=f"{name}_proj_conv")(shortcut)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([y, shortcut]))


def explained_feature_layer(model: keras.Model) -> str:
    """Name of the layer whose output the heatmap explains: the last block of the last stage but
    one. At stride 16 it has twice the resolution of the last feature map (10x10 cells over a
    160 px input, not 5x5), and LayerCAM there pointed at the lesion more often
    (docs/model-history.md)."""
    block_outputs = [layer.name for layer in model.layers
                     if re.fullmatch(r"stage\d+_block\d+_out", layer.name)]
    stages = sorted({int(name.split("_")[0][len("stage"):]) for name in block_outputs})
    if len(stages) < 2:
        raise ValueError(f"{model.name} has {len(stages)} residual stages; the heatmap needs two or more")
    # model.layers is in topological order, so the stage's last block comes last.
    return [name for name in block_outputs if name.startswith(f"stage{stages[-2]}_")][-1]


def explained_stride(model: keras.Model) -> int:
    """Input pixels per cell of the explained feature map, along each side."""
    explained = model.get_layer(explained_feature_layer(model)).output
    return model.get_layer(IMAGE_INPUT).output.shape[1] // explained.shape[1]


def explanation_tail(model: keras.Model) -> keras.Model:
    """The part of `model` after `explained_feature_layer`, as a model for tf-keras-vis.

    Inputs: that feature map and the metadata vector; output: the logits, computed by the very
    layers (and weights) of `model`, which is not modified. Its first layer, EXPLAINED_LAYER,
    passes the feature map on unchanged, so that tf-keras-vis can take gradients at it.
    Everything after it runs as one traced graph: tf-keras-vis calls its model eagerly, layer by
    layer, which through the last stage and the head made the heatmap take about 45 ms per
    analysis here; traced, about 22.
    """
    import tensorflow as tf

    explained = model.get_layer(explained_feature_layer(model)).output
    rest = keras.Model([explained, model.get_layer(METADATA_INPUT).output], model.output,
                       name="after_explained_layer")
    traced = tf.function(lambda feature_map, metadata: rest([feature_map, metadata], training=False))
    feature_map = keras.Input(explained.shape[1:], name="feature_map")
    metadata = keras.Input(model.get_layer(METADATA_INPUT).output.shape[1:], name=METADATA_INPUT)
    marked = layers.Activation("linear", name=EXPLAINED_LAYER)(feature_map)
    logits = _TracedCall(traced, model.output.shape, name="traced_rest")(marked, metadata)
    return keras.Model([feature_map, metadata], logits, name="explanation_tail")


class _TracedCall(layers.Layer):
    """A layer without weights of its own that runs a traced function (see `explanation_tail`)."""

    def __init__(self, function, output_shape, **kwargs):
        super().__init__(**kwargs)
        self.function = function
        self.traced_output_shape = tuple(output_shape)

    def call(self, *inputs):
        return self.function(*inputs)

    def compute_output_shape(self, *input_shapes):
        return self.traced_output_shape
