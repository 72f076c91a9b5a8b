"""Training-time augmentation: what the network learns to see past.

Random crops, dihedral flips and rotations, mild colour jitter, optional device-style colour
re-rendering and metadata dropout, drawn class by class to answer the class imbalance. Built as a
tf.data pipeline over the uint8 canvases `data.load_arrays` returns.
"""

import numpy as np

from dermalens import preprocessing
from dermalens.lesions import CLASSES


def augmented_dataset(canvases, metadata, labels, class_draw, class_loss_weights, size,
                      batch_size, seed, colour_shift: float = 0.0):
    """Endless tf.data pipeline of (inputs, target, sample weight) batches: class c drawn with
    probability class_draw[c] and weighted class_loss_weights[c] (`sampling_and_loss_weights`),
    then random square crop (49-100% of the area), dihedral flips/rotations, mild colour jitter
    (dermoscopes differ in white balance), and metadata dropout so the network also works when
    age, sex or site is unknown. With colour_shift > 0 half the images are also re-rendered
    (`shift_colours`). labels: (n,) class indices; the targets are their one-hot vectors."""
    import tensorflow as tf

    def augment(canvas, meta, target, weight):
        image = tf.cast(canvas, tf.float32)
        side = tf.random.uniform((), 0.7, 1.0)
        top = tf.random.uniform((), 0.0, 1.0 - side)
        left = tf.random.uniform((), 0.0, 1.0 - side)
        box = tf.stack([top, left, top + side, left + side])[None]
        image = tf.image.crop_and_resize(image[None], box, [0], (size, size))[0]
        image = tf.image.random_flip_left_right(image)
        image = tf.image.random_flip_up_down(image)
        image = tf.image.rot90(image, tf.random.uniform((), 0, 4, tf.int32))
        image = image / 255.0
        if colour_shift > 0:
            image = tf.cond(tf.random.uniform(()) < 0.5,
                            lambda: shift_colours(image, colour_shift), lambda: image)
        image = tf.image.random_brightness(image, 0.08)
        image = tf.image.random_contrast(image, 0.85, 1.15)
        image = tf.image.random_saturation(image, 0.85, 1.15)
        image = tf.image.random_hue(image, 0.03)
        image = tf.clip_by_value(image, 0.0, 1.0) * 2.0 - 1.0

        return {"image": image, "metadata": drop_metadata(meta)}, target, weight

    targets = np.eye(len(CLASSES), dtype=np.float32)[labels]
    dataset = drawn_by_class(canvases, metadata, targets, labels, class_draw, class_loss_weights, seed)
    dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def view_dataset(pixels, metadata, targets, labels, class_draw, class_loss_weights, batch_size, seed):
    """Endless tf.data pipeline of (inputs, target, sample weight) batches over device-style views
    (`device_views.render_view`, already at the network's input size as served), drawn class by class
    like `augmented_dataset`. The views carry their own geometry and colour; only dihedral flips
    and metadata dropout are added, which leave a teacher's answer on the view unchanged.
    targets: (n, classes) distributions (e.g. a teacher's probabilities on each view)."""
    import tensorflow as tf

    def augment(view, meta, target, weight):
        image = tf.image.random_flip_up_down(tf.image.random_flip_left_right(view))
        image = tf.image.rot90(image, tf.random.uniform((), 0, 4, tf.int32))
        image = tf.cast(image, tf.float32) / 127.5 - 1.0
        return {"image": image, "metadata": drop_metadata(meta)}, target, weight

    dataset = drawn_by_class(pixels, metadata, targets, labels, class_draw, class_loss_weights, seed)
    dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def drawn_by_class(images, metadata, targets, labels, class_draw, class_loss_weights, seed):
    """Endless dataset of (image, metadata, target, loss weight): class c drawn with probability
    class_draw[c] and weighted class_loss_weights[c] (`train.sampling_and_loss_weights`)."""
    import tensorflow as tf

    present = [c for c in range(len(CLASSES)) if class_draw[c] > 0]
    per_class = []
    for c in present:
        members = labels == c
        per_class.append(tf.data.Dataset.from_tensor_slices(
            (images[members], metadata[members], targets[members],
             np.full(members.sum(), class_loss_weights[c], np.float32)))
            .shuffle(int(members.sum()), seed=seed + c, reshuffle_each_iteration=True).repeat())
    return tf.data.Dataset.sample_from_datasets(
        per_class, weights=[float(class_draw[c]) for c in present], seed=seed)


def drop_metadata(meta):
    """Each of age, sex and site dropped (zeroed) with probability 1/4, so the network also
    works when any of them is unknown."""
    import tensorflow as tf

    keep = tf.cast(tf.random.uniform((3,)) > 0.25, tf.float32)
    return tf.concat([meta[:2] * keep[0], meta[2:4] * keep[1], meta[4:preprocessing.METADATA_SIZE] * keep[2]], 0)


def shift_colours(image, shift: float):
    """image (h, w, 3) float in [0, 1] -> the same scene as another device might render it:
    each channel times a gain in [1 - shift, 1 + shift] (white balance), all of them times
    another (exposure), then the tone curve x ** g with log g uniform in +- log(1 + 2 * shift),
    clipped to [0, 1]. The hue/saturation jitter alone is far milder than the white-balance and
    exposure differences between dermoscopes, which measurably move the diagnosis (model card)."""
    import tensorflow as tf

    gains = tf.random.uniform((3,), 1.0 - shift, 1.0 + shift) * tf.random.uniform((), 1.0 - shift, 1.0 + shift)
    log_gamma = tf.random.uniform((), -1.0, 1.0) * tf.math.log(1.0 + 2.0 * shift)
    return tf.clip_by_value(image * gains, 1e-6, 1.0) ** tf.exp(log_gamma)
