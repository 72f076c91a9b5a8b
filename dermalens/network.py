"""The classifier network: a small ResNet (basic residual blocks) with an optional metadata input.

The model maps (image tensor, metadata vector) to 7 logits in `lesions.CLASSES` order.
Probabilities are softmax(logits / temperature); the temperature is fitted after training and
stored in the model card, so the saved network itself is never modified for calibration.
"""

import keras
from keras import layers

# Name of the last convolutional feature map, used by Grad-CAM.
FEATURE_LAYER = "features"
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


def classification_head(model: keras.Model) -> keras.Model:
    """The part of `model` after the last convolutional feature map, as a separate model.

    Inputs: the feature map (output of FEATURE_LAYER) and the metadata vector; output: the
    logits, with weights copied from `model` (which is not modified). Grad-CAM runs on this
    head, so its gradients never have to pass back through the convolutional body.
    """
    feature_map = keras.Input(model.get_layer(FEATURE_LAYER).output.shape[1:], name="feature_map")
    metadata = keras.Input(model.get_layer("metadata_dense").input.shape[1:], name=METADATA_INPUT)
    logits_layer = model.get_layer("logits")
    head = keras.Model([feature_map, metadata],
                       _head(feature_map, metadata, logits_layer.units, model.get_layer("dropout").rate),
                       name="classification_head")
    for layer in head.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return head
