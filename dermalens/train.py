"""Train the lesion classifier from a HAM10000-style folder, reproducibly and resumably.

    python -m dermalens.train --data ../shared/data/ham10000 --out models/

The folder holds `HAM10000_metadata.csv` (lesion_id,image_id,dx,...,age,sex,localization) and
`images/<image_id>.jpg`. Images are split by lesion_id (stratified by diagnosis, fixed seed) so
that no lesion has photos on both sides. Class imbalance (58:1) is answered by class-balanced
sampling and loss weights that together give every class the same expected share of the loss
(see `sampling_and_loss_weights`); probabilities are calibrated afterwards by temperature
scaling on the validation split (see dermalens.calibrate).

Outputs in --out: `<name>.keras` (network), `<name>.json` (model card data), `<name>.split.csv`,
`<name>.training-log.csv`, `<name>.training-curve.png`, and, from `dermalens.calibrate`, the
temperature, thresholds and `<name>.gate.npz`. Checkpoints (one per epoch, for --resume) go to
--work-dir.
"""

import argparse
import csv
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from dermalens import metrics, preprocessing
from dermalens.lesions import CLASSES

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Canvas the training augmentations crop from; the validation/serving input is the centre
# square resized straight to input_size, which equals a full-canvas crop.
CANVAS_SCALE = 1.25
LOG_FIELDS = ("epoch", "loss", "val_loss", "val_accuracy", "val_balanced_accuracy",
              "learning_rate", "seconds")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="HAM10000-style folder")
    parser.add_argument("--out", required=True, type=Path, help="folder for the shipped model")
    parser.add_argument("--name", default="dermalens-resnet18s-v1", help="model name")
    parser.add_argument("--version", default="1.0.0",
                        help="model version, shown with every analysis and report")
    parser.add_argument("--work-dir", type=Path, help="checkpoints (default .training/<name>)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    parser.add_argument("--epochs", type=int, default=36)
    parser.add_argument("--patience", type=int, default=8,
                        help="stop after this many epochs without a better val balanced accuracy")
    parser.add_argument("--time-budget", type=float, metavar="MINUTES",
                        help="stop before an epoch expected to end past this many minutes of "
                             "epochs (wall clock, summed over --resume runs); the best epoch so "
                             "far is shipped; default none")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--input-size", type=int, default=128)
    parser.add_argument("--widths", default="32,64,128,256", help="channels per ResNet stage")
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--limit", type=int, help="use only the first N images (smoke runs)")
    parser.add_argument("--no-tta", action="store_true", help="calibrate without test-time augmentation")
    parser.add_argument("--init-weights", type=Path,
                        help="start from these weights (a new learning-rate cycle, e.g. a warm restart)")
    parser.add_argument("--balanced-sampling", type=float, default=0.0,
                        help="0 = draw images at their natural class frequencies and weight the loss "
                             "by inverse frequency; 1 = draw every class equally often, unweighted; "
                             "in between splits the correction (see sampling_and_loss_weights)")
    parser.add_argument("--ema-momentum", type=float, default=0.0,
                        help="keep an exponential moving average of the weights with this momentum "
                             "per step (e.g. 0.997) and validate, keep and ship the average; 0 = off")
    parser.add_argument("--mixed-precision", action="store_true",
                        help="compute in bfloat16 with float32 weights (needs AVX512-BF16 or a "
                             "recent GPU; here the network runs 1.5x faster, a whole epoch with "
                             "its augmentation about 1.15x); the shipped model is float32")
    parser.add_argument("--teacher", type=Path,
                        help="teacher-probabilities.npz from dermalens.teacher: distil from it")
    parser.add_argument("--teacher-weight", type=float, default=0.5,
                        help="share of the teacher's probabilities in each training target")
    parser.add_argument("--mixup", type=float, default=0.0,
                        help="mixup: blend each training example with another from its batch, "
                             "images, metadata, targets and loss weights alike, in a share drawn "
                             "from Beta(a, a) with this a (e.g. 0.2); 0 = off")
    parser.add_argument("--colour-shift", type=float, default=0.0,
                        help="re-render half the training images as another dermoscope or camera "
                             "might: per-channel gains and an exposure gain in 1 +- S, a tone curve "
                             "x^g with g in [1/(1+2S), 1+2S] (e.g. 0.15); 0 = off")
    args = parser.parse_args(argv)
    if not 0.0 <= args.teacher_weight <= 1.0:
        parser.error("--teacher-weight must be between 0 and 1")
    if not 0.0 <= args.balanced_sampling <= 1.0:
        parser.error("--balanced-sampling must be between 0 and 1")
    if not 0.0 <= args.ema_momentum < 1.0:
        parser.error("--ema-momentum must be at least 0 and below 1")
    if not 0.0 <= args.mixup <= 10.0:
        parser.error("--mixup must be between 0 and 10")
    if not 0.0 <= args.colour_shift <= 0.5:
        parser.error("--colour-shift must be between 0 and 0.5")
    if args.time_budget is not None and not args.time_budget > 0:
        parser.error("--time-budget must be a positive number of minutes")
    return args


def why_training_ended(state: dict, epochs: int, patience: int,
                       time_budget_minutes: float | None) -> str | None:
    """Why a stage with this saved state trains no further under these flags, or None if it goes on.

    Follows from the state and the flags alone (nothing like a stored "stopped" flag), so a
    finished run resumed with the same flags trains no further, and resuming with more epochs,
    patience or time deliberately continues it. The time budget expects the next epoch to take
    as long as the mean of those run so far (`training_seconds` in the state, summed over
    resumed runs; a state written before it was kept counts as no time used)."""
    completed = state["completed_epochs"]
    if completed >= epochs:
        return f"epoch limit: {epochs} epochs run"
    if state["epochs_without_improvement"] >= patience:
        return f"early stopping: no better validation balanced accuracy for {patience} epochs"
    used = state.get("training_seconds", 0.0)
    expected_end_of_next_epoch = used * (completed + 1) / completed if completed else 0.0
    if time_budget_minutes is not None and expected_end_of_next_epoch > time_budget_minutes * 60:
        return (f"time budget: {used / 60:.1f} of {time_budget_minutes:g} minutes used, and an "
                f"epoch takes about {used / completed / 60:.1f} minutes")
    return None


def read_metadata(data_dir: Path, limit: int | None = None) -> list[dict]:
    """Rows of the metadata CSV with `age` as float or None and unknown values as None."""
    with open(data_dir / "HAM10000_metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["age"] = float(row["age"]) if row.get("age") not in (None, "", "unknown") else None
        for key in ("sex", "localization"):
            if row.get(key) in (None, "", "unknown"):
                row[key] = None
    return rows[:limit] if limit else rows


def split_by_lesion(rows: list[dict], val_fraction: float, seed: int) -> dict[str, str]:
    """image_id -> "train" | "val"; every image of a lesion lands on the same side.

    Lesions are stratified by diagnosis so each class keeps `val_fraction` of its lesions (at
    least one) in validation.
    """
    lesion_dx = {}
    for row in rows:
        lesion_dx.setdefault(row["lesion_id"], row["dx"])
    rng = np.random.default_rng(seed)
    val_lesions = set()
    for dx in CLASSES:
        lesions = sorted(lesion for lesion, label in lesion_dx.items() if label == dx)
        rng.shuffle(lesions)
        count = max(1, round(len(lesions) * val_fraction)) if len(lesions) > 1 else 0
        val_lesions.update(lesions[:count])
    return {row["image_id"]: "val" if row["lesion_id"] in val_lesions else "train" for row in rows}


def read_split(path: Path) -> dict[str, str]:
    """image_id -> "train" or "val", from a split.csv written by this module."""
    with open(path, newline="") as handle:
        return {row["image_id"]: row["split"] for row in csv.DictReader(handle)}


def load_arrays(data_dir: Path, rows: list[dict], size: int, canvas: int,
                served: np.ndarray | None = None):
    """Decode every image once through the shared preprocessing.

    Returns (canvases uint8 (n, canvas, canvas, 3), inputs float32 (m, size, size, 3) exactly as
    served for the rows where the boolean mask `served` is true, in row order (all n rows when it
    is None), metadata float32 (n, METADATA_SIZE), labels int (n,)). Training augments the
    canvases and validates on the inputs: asking inputs only for the validation rows saves
    n - m float32 squares (2.6 GB for HAM10000's training split at 160 px).
    """
    from tqdm import tqdm

    served = np.ones(len(rows), bool) if served is None else np.asarray(served, bool)
    canvases = np.zeros((len(rows), canvas, canvas, 3), np.uint8)
    inputs = np.zeros((int(served.sum()), size, size, 3), np.float32)
    metadata = np.zeros((len(rows), preprocessing.METADATA_SIZE), np.float32)
    input_index = 0
    for index, row in enumerate(tqdm(rows, desc="decoding", unit="img", mininterval=5)):
        rgb = preprocessing.decode_image((data_dir / "images" / f"{row['image_id']}.jpg").read_bytes())
        canvases[index] = preprocessing.network_square(rgb, canvas)
        if served[index]:
            inputs[input_index] = preprocessing.network_input(rgb, size)
            input_index += 1
        metadata[index] = preprocessing.encode_metadata(row["age"], row["sex"], row["localization"])
    labels = np.array([CLASSES.index(row["dx"]) for row in rows])
    return canvases, inputs, metadata, labels


def class_weights(labels: np.ndarray) -> np.ndarray:
    """Inverse-frequency weights, normalised so the average sample weight is 1."""
    counts = np.bincount(labels, minlength=len(CLASSES)).astype(float)
    weights = np.where(counts > 0, len(labels) / (len(CLASSES) * np.maximum(counts, 1)), 0.0)
    return weights.astype(np.float32)


def sampling_and_loss_weights(labels: np.ndarray, balanced_sampling: float):
    """How training answers the class imbalance: returns (sampling probabilities per class,
    loss weight per class), both float arrays in CLASSES order.

    A class with n_c training images is drawn with probability p_c proportional to
    n_c ** (1 - balanced_sampling) and its loss is weighted by 1 / (K * p_c) for K classes present,
    so every class contributes the same expected share of the loss whatever balanced_sampling is
    (0: natural frequencies with inverse-frequency weights, as `class_weights` when every class
    is present; 1: every class equally often, unweighted). Splitting the correction between the
    two keeps the rare classes from being either a few huge-weight images per batch or the same
    hundred images over and over. The expected sample weight is 1; absent classes get probability and weight 0.
    """
    counts = np.bincount(labels, minlength=len(CLASSES)).astype(float)
    draw = np.where(counts > 0, counts ** (1.0 - balanced_sampling), 0.0)
    probabilities = draw / draw.sum()
    present = int((counts > 0).sum())
    weights = np.where(counts > 0, 1.0 / (present * np.maximum(probabilities, 1e-12)), 0.0)
    return probabilities, weights.astype(np.float32)


def training_targets(labels: np.ndarray, teacher_probabilities: np.ndarray | None,
                     teacher_weight: float) -> np.ndarray:
    """Per-image target distributions: the one-hot label, or with a teacher the mixture
    (1 - teacher_weight) * one-hot + teacher_weight * teacher probabilities (knowledge
    distillation at temperature 1; the teacher's soft labels carry which classes look alike)."""
    one_hot = np.eye(len(CLASSES), dtype=np.float32)[labels]
    if teacher_probabilities is None:
        return one_hot
    return ((1.0 - teacher_weight) * one_hot
            + teacher_weight * np.asarray(teacher_probabilities, np.float32))


def read_teacher(path: Path, image_ids: list[str]) -> np.ndarray:
    """The teacher's probabilities for image_ids, in that order (every id must be present)."""
    with np.load(path) as saved:
        index = {image_id: row for row, image_id in enumerate(saved["image_ids"].tolist())}
        missing = [image_id for image_id in image_ids if image_id not in index]
        if missing:
            raise SystemExit(f"{path} has no teacher probabilities for {len(missing)} images, "
                             f"e.g. {missing[0]}")
        return saved["probabilities"][[index[image_id] for image_id in image_ids]].astype(np.float32)


def augmented_dataset(canvases, metadata, targets, labels, class_draw, class_loss_weights, size,
                      batch_size, seed, mixup: float = 0.0, colour_shift: float = 0.0):
    """Endless tf.data pipeline of (inputs, target, sample weight) batches: class c drawn with
    probability class_draw[c] and weighted class_loss_weights[c] (`sampling_and_loss_weights`),
    then random square crop (49-100% of the area), dihedral flips/rotations, mild colour jitter
    (dermoscopes differ in white balance), and metadata dropout so the network also works when
    age, sex or site is unknown. With colour_shift > 0 half the images are also re-rendered
    (`shift_colours`). With mixup > 0, each batch is then blended (`mix_batch`).
    targets: (n, classes) distributions; labels: (n,) class indices."""
    import tensorflow as tf

    sex_slice = slice(2, 2 + 2)
    site_slice = slice(4, preprocessing.METADATA_SIZE)

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

        keep = tf.cast(tf.random.uniform((3,)) > 0.25, tf.float32)
        meta = tf.concat([meta[:2] * keep[0], meta[sex_slice] * keep[1], meta[site_slice] * keep[2]], 0)
        return {"image": image, "metadata": meta}, target, weight

    present = [c for c in range(len(CLASSES)) if class_draw[c] > 0]
    per_class = []
    for c in present:
        members = labels == c
        per_class.append(tf.data.Dataset.from_tensor_slices(
            (canvases[members], metadata[members], targets[members],
             np.full(members.sum(), class_loss_weights[c], np.float32)))
            .shuffle(int(members.sum()), seed=seed + c, reshuffle_each_iteration=True).repeat())
    dataset = tf.data.Dataset.sample_from_datasets(
        per_class, weights=[float(class_draw[c]) for c in present], seed=seed)
    dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    if mixup > 0:
        dataset = dataset.map(lambda inputs, target, weight: mix_batch(inputs, target, weight, mixup),
                              num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


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


def mix_batch(inputs: dict, target, weight, alpha: float):
    """Mixup (Zhang et al., 2018): example i becomes share s_i of itself plus 1 - s_i of example
    j = perm(i) of the same batch, s_i ~ Beta(alpha, alpha), in every input, its target
    distribution and its loss weight, so the class balance of the loss is kept in expectation.
    It regularises a network trained from scratch on few images towards linear behaviour between
    examples; validation and serving never mix."""
    import tensorflow as tf

    count = tf.shape(target)[0]
    first = tf.random.gamma([count], alpha)
    # (With a small alpha both draws can underflow to 0; no_nan makes that a share of 0, not NaN.)
    share = tf.math.divide_no_nan(first, first + tf.random.gamma([count], alpha))
    partner = tf.random.shuffle(tf.range(count))

    def blend(values):
        s = tf.reshape(tf.cast(share, values.dtype), [-1] + [1] * (len(values.shape) - 1))
        return s * values + (1 - s) * tf.gather(values, partner)

    return {name: blend(value) for name, value in inputs.items()}, blend(target), blend(weight)


def predict_logits(model, inputs, metadata, batch_size=128) -> np.ndarray:
    outputs = [model({"image": inputs[i:i + batch_size], "metadata": metadata[i:i + batch_size]},
                     training=False).numpy() for i in range(0, len(inputs), batch_size)]
    return np.concatenate(outputs) if outputs else np.zeros((0, len(CLASSES)))


def epoch_keeper(*args, **kwargs):
    """Per-epoch bookkeeping as a Keras callback: validation figures, CSV log, checkpoint, best
    weights and early stopping. State lives in work_dir/state.json so --resume can pick it up.
    (Defined inside a function so this module imports without TensorFlow.)"""
    import keras

    class _Callback(keras.callbacks.Callback):
        def __init__(self, work_dir, val_inputs, val_metadata, val_labels, val_weights,
                     should_stop, state):
            super().__init__()
            self.work_dir, self.should_stop, self.state = work_dir, should_stop, state
            self.val = (val_inputs, val_metadata, val_labels, val_weights)
            self.started = time.time()

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.time()

        def on_epoch_end(self, epoch, logs=None):
            inputs, meta, labels, weights = self.val
            logits = predict_logits(self.model, inputs, meta)
            probabilities = metrics.softmax(logits)
            sample_weights = weights[labels]
            val_loss = float(-(np.log(probabilities[np.arange(len(labels)), labels] + 1e-12)
                               * sample_weights).sum() / sample_weights.sum())
            matrix = metrics.confusion_matrix(labels, probabilities.argmax(axis=1))
            row = {
                "epoch": epoch + 1,
                "loss": float(logs["loss"]),
                "val_loss": val_loss,
                "val_accuracy": float(np.trace(matrix) / matrix.sum()),
                "val_balanced_accuracy": metrics.balanced_accuracy(matrix),
                "learning_rate": float(self.model.optimizer.learning_rate.numpy()),
                "seconds": round(time.time() - self.started, 1),
            }
            append_log_row(self.work_dir / "training-log.csv", row, LOG_FIELDS)
            if row["val_balanced_accuracy"] > self.state["best_balanced_accuracy"]:
                self.state.update(best_balanced_accuracy=row["val_balanced_accuracy"],
                                  best_epoch=epoch + 1, epochs_without_improvement=0)
                self.model.save_weights(self.work_dir / "best.weights.h5")
            else:
                self.state["epochs_without_improvement"] += 1
            self.state["completed_epochs"] = epoch + 1
            # Checkpoint (with optimizer state) before the state file, so the state never
            # points past a checkpoint that exists.
            self.model.save(self.work_dir / "checkpoint.keras")
            self.state["training_seconds"] = round(
                self.state.get("training_seconds", 0.0) + time.time() - self.started, 1)
            (self.work_dir / "state.json").write_text(json.dumps(self.state, indent=2))
            print(f"\nepoch {epoch + 1}: val balanced accuracy "
                  f"{row['val_balanced_accuracy']:.3f} (best {self.state['best_balanced_accuracy']:.3f}"
                  f" at {self.state['best_epoch']}), val loss {val_loss:.3f}", flush=True)
            reason = self.should_stop(self.state)
            if reason:
                print(reason, flush=True)
                self.model.stop_training = True

    return _Callback(*args, **kwargs)


def append_log_row(path: Path, row: dict, fields) -> None:
    """Append one epoch's row to a CSV log; a new file starts with the header `fields`."""
    new_file = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        if new_file:
            writer.writeheader()
        writer.writerow(row)


def plot_curves(log_path: Path, out_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(log_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    epochs = [int(row["epoch"]) for row in rows]
    figure, (loss_axis, score_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot(epochs, [float(r["loss"]) for r in rows], label="train loss (weighted)")
    loss_axis.plot(epochs, [float(r["val_loss"]) for r in rows], label="validation loss (weighted)")
    loss_axis.set_xlabel("epoch")
    loss_axis.legend()
    score_axis.plot(epochs, [float(r["val_balanced_accuracy"]) for r in rows], label="val balanced accuracy")
    score_axis.plot(epochs, [float(r["val_accuracy"]) for r in rows], label="val accuracy")
    score_axis.set_xlabel("epoch")
    score_axis.set_ylim(0, 1)
    score_axis.legend()
    figure.tight_layout()
    figure.savefig(out_path, dpi=100)
    plt.close(figure)


def main(argv=None) -> int:
    args = parse_args(argv)
    import keras

    keras.utils.set_random_seed(args.seed)
    work_dir = args.work_dir or Path(".training") / args.name
    work_dir.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    widths = tuple(int(width) for width in args.widths.split(","))
    canvas = round(args.input_size * CANVAS_SCALE)

    rows = read_metadata(args.data, args.limit)
    split_path = work_dir / "split.csv"
    if args.resume and split_path.exists():
        split = read_split(split_path)
    else:
        split = split_by_lesion(rows, args.val_fraction, args.seed)
        with open(split_path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image_id", "lesion_id", "dx", "split"])
            writer.writerows([r["image_id"], r["lesion_id"], r["dx"], split[r["image_id"]]] for r in rows)

    precision = keras.mixed_precision.global_policy()
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model, state = fit(args, work_dir, rows, split, canvas, widths)
    finally:
        # Whatever happens, the shipped model (and anything else in this process) is float32.
        keras.mixed_precision.set_global_policy(precision)
    sides = [split[row["image_id"]] for row in rows]
    finish(args, model, work_dir, state, widths, sides.count("train"), sides.count("val"))
    return 0


def fit(args, work_dir, rows, split, canvas, widths):
    """Train (or resume) under the current dtype policy; returns (model, state) after the last epoch."""
    import keras

    is_val = np.array([split[row["image_id"]] == "val" for row in rows])
    canvases, val_inputs, meta, labels = load_arrays(args.data, rows, args.input_size, canvas,
                                                     served=is_val)
    # Validation loss is weighted by inverse frequency, whatever the training sampling.
    weights = class_weights(labels[~is_val])
    drawn, loss_weights = sampling_and_loss_weights(labels[~is_val], args.balanced_sampling)
    print(f"{(~is_val).sum()} training / {is_val.sum()} validation images; per class drawn share "
          "and loss weight: " + ", ".join(f"{c} {p:.1%} x{w:.2f}"
                                          for c, p, w in zip(CLASSES, drawn, loss_weights)), flush=True)

    train_ids = [row["image_id"] for row, val in zip(rows, is_val) if not val]
    teacher = read_teacher(args.teacher, train_ids) if args.teacher else None
    targets = training_targets(labels[~is_val], teacher, args.teacher_weight)
    dataset = augmented_dataset(canvases[~is_val], meta[~is_val], targets, labels[~is_val], drawn,
                                loss_weights, args.input_size, args.batch_size, args.seed, args.mixup,
                                args.colour_shift)
    steps_per_epoch = max(1, int((~is_val).sum()) // args.batch_size)

    state_path = work_dir / "state.json"
    if args.resume and state_path.exists():
        state = json.loads(state_path.read_text())
        model = keras.models.load_model(work_dir / "checkpoint.keras")
        print(f"resuming after epoch {state['completed_epochs']}", flush=True)
    else:
        for stale in ("training-log.csv", "state.json", "checkpoint.keras", "best.weights.h5"):
            (work_dir / stale).unlink(missing_ok=True)
        state = {"completed_epochs": 0, "best_balanced_accuracy": -1.0, "best_epoch": 0,
                 "epochs_without_improvement": 0}
        from dermalens.network import build_resnet

        model = build_resnet(args.input_size, preprocessing.METADATA_SIZE, widths=widths)
        if args.init_weights:
            model.load_weights(args.init_weights)
        total_steps = steps_per_epoch * args.epochs
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, max(1, total_steps - steps_per_epoch), warmup_target=args.learning_rate,
            warmup_steps=steps_per_epoch, alpha=0.01)
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=5e-4,
                                           use_ema=args.ema_momentum > 0,
                                           # (Keras validates the momentum even when off.)
                                           ema_momentum=args.ema_momentum or 0.99)
        model.compile(optimizer=optimizer,
                      loss=keras.losses.CategoricalCrossentropy(from_logits=True))

    def should_stop(state):
        return why_training_ended(state, args.epochs, args.patience, args.time_budget)

    ended_by = should_stop(state)
    if ended_by:
        print("trains no further:", ended_by, flush=True)
    else:
        keeper = epoch_keeper(work_dir, val_inputs, meta[is_val], labels[is_val], weights,
                              should_stop, state)
        # With EMA, the average is swapped into the model at each epoch's end (before the
        # keeper validates and saves) and out again when the next epoch starts. So checkpoints
        # hold the average as the model's weights, and --resume continues training from it
        # (the running average restarts from the last raw weights: a small, harmless jolt).
        callbacks = ([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)]
                     if model.optimizer.use_ema else []) + [keeper]
        model.fit(dataset, epochs=args.epochs, initial_epoch=state["completed_epochs"],
                  steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                  verbose=1 if sys.stdout.isatty() else 2)
    return model, state


def finish(args, model, work_dir, state, widths, train_count, val_count):
    """Ship the best epoch: weights, training artefacts and the card, then calibrate the card."""
    from dermalens import calibrate
    from dermalens.inference import sha256_of_file
    from dermalens.network import build_resnet

    model.load_weights(work_dir / "best.weights.h5")
    # A fresh graph without optimizer state is what we ship (smaller, nothing but weights).
    shipped = build_resnet(args.input_size, preprocessing.METADATA_SIZE, widths=widths)
    shipped.set_weights(model.get_weights())
    weights_path = args.out / f"{args.name}.keras"
    shipped.save(weights_path)
    for artefact in ("split.csv", "training-log.csv"):
        (args.out / f"{args.name}.{artefact}").write_bytes((work_dir / artefact).read_bytes())
    plot_curves(work_dir / "training-log.csv", args.out / f"{args.name}.training-curve.png")

    card_path = args.out / f"{args.name}.json"
    card_path.write_text(json.dumps({
        "name": args.name,
        "version": args.version,
        "architecture": f"ResNet-18-style (basic blocks, 2 per stage, widths {list(widths)}), "
                        f"image + metadata inputs, {shipped.count_params():,} parameters",
        "input_size": args.input_size,
        "classes": list(CLASSES),
        "preprocessing": preprocessing.describe(args.input_size),
        "training": {
            "command": "python -m dermalens.train " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "initialised_from": str(args.init_weights) if args.init_weights else "random (from scratch)",
            "data": "HAM10000 (ISIC 2018 Task 3 training set), 200x150 copies, CC BY-NC 4.0",
            "split": f"by lesion_id, stratified by dx, {args.val_fraction:.0%} of lesions held out, "
                     f"seed {args.seed}",
            "train_images": train_count,
            "validation_images": val_count,
            "epochs_run": state["completed_epochs"],
            "best_epoch": state["best_epoch"],
            "ended_by": why_training_ended(state, args.epochs, args.patience, args.time_budget),
            "imbalance": (f"each class drawn in proportion to n^{1 - args.balanced_sampling:g} "
                          f"(n = its training images) and its loss weighted so every class has "
                          f"the same expected share of the loss"),
            # From the trained model, not the flag: a resumed checkpoint keeps its own policy.
            "arithmetic": ("mixed bfloat16 (float32 weights)"
                           if any(layer.dtype_policy.compute_dtype == "bfloat16" for layer in model.layers)
                           else "float32"),
            "weight_averaging": (f"exponential moving average of the weights, momentum "
                                 f"{args.ema_momentum:g} per step" if args.ema_momentum else "none"),
            "distillation": (f"targets mix {1 - args.teacher_weight:.0%} one-hot label and "
                             f"{args.teacher_weight:.0%} probabilities of a fine-tuned ImageNet "
                             f"EfficientNet-Lite0 teacher (dermalens.teacher, trained on the "
                             f"training split only; {args.teacher})" if args.teacher else "none"),
            "augmentation": "random square crops (49-100% of the area), flips, 90-degree "
                            "rotations, brightness/contrast/saturation/hue jitter, metadata dropout"
                            + (f", mixup within each batch (Beta({args.mixup:g}, {args.mixup:g}) shares)"
                               if args.mixup else "")
                            + (f", half the images re-rendered with channel and exposure gains in "
                               f"1 +- {args.colour_shift:g} and a tone curve x^g, g in "
                               f"[1/{1 + 2 * args.colour_shift:g}, {1 + 2 * args.colour_shift:g}]"
                               if args.colour_shift else ""),
        },
        "sha256": sha256_of_file(weights_path),
    }, indent=2) + "\n")
    calibrate.calibrate(card_path, args.data, tta=not args.no_tta)


if __name__ == "__main__":
    sys.exit(main())
