"""Train the lesion classifier from a HAM10000-style folder, reproducibly and resumably.

    python -m dermalens.train --data ../shared/data/ham10000 --out models/

The folder holds `HAM10000_metadata.csv` (lesion_id,image_id,dx,...,age,sex,localization) and
`images/<image_id>.jpg`. Images are split by lesion_id (stratified by diagnosis, fixed seed) so
that no lesion has photos on both sides. Class imbalance (58:1) is answered by class-balanced
sampling and loss weights that together give every class the same expected share of the loss
(see `sampling_and_loss_weights`); probabilities are calibrated afterwards by temperature
scaling on the validation split (see `dermalens.training.calibrate`).

Outputs in --out: `<name>.keras` (network), `<name>.json` (model card data), `<name>.split.csv`,
`<name>.training-log.csv`, `<name>.training-curve.png`, and, from `calibrate`, the
temperature, thresholds and `<name>.gate.npz`. Checkpoints (one per epoch, for --resume) go to
--work-dir.
"""

import argparse
import csv
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from dermalens import config, preprocessing
from dermalens.inference import softmax
from dermalens.lesions import CLASSES
from dermalens.training import calibrate, data, device_views, folds, metrics, teacher
from dermalens.training.augment import augmented_dataset, view_dataset

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
    parser.add_argument("--folds", type=Path, help="a fold assignment (dermalens.training.folds); with "
                                                  "--fold, validate on that fold and train on the rest")
    parser.add_argument("--fold", type=int, help="the fold to validate on (0-based)")
    parser.add_argument("--teacher-views", type=Path,
                        help="a teacher cache (dermalens.training.teacher): train on its fixed views "
                             "of each image towards the teacher's outputs on them (function matching)")
    parser.add_argument("--teacher-weight", type=float, default=0.7,
                        help="share of the teacher's probabilities (class-balanced: train.class_balanced) in "
                             "each view's target (the rest is the one-hot label)")
    parser.add_argument("--teacher-view", choices=("same", "clean"), default="same",
                        help="which of the teacher's outputs each view is trained towards: its output "
                             "on the same view (function matching), or on view 0, the image itself "
                             "(for a teacher that is unreliable on re-rendered views)")
    parser.add_argument("--teacher-prior", choices=tuple(TEACHER_PRIORS), default="balanced",
                        help="the class frequencies the teacher's probabilities are brought to: "
                             "balanced (train.class_balanced, the default) or natural (as the teacher "
                             "gives them: HAM10000's)")
    parser.add_argument("--ship", choices=("best", "last"), default="best",
                        help="which epoch's weights to ship: the best validation balanced accuracy "
                             "(early stopping on --patience), or the last (no early stopping; for a "
                             "run whose validation images its starting weights or teacher saw)")
    parser.add_argument("--prior-correction", action="store_true",
                        help="calibrate with a post-hoc correction of the class prior "
                             "(dermalens.training.calibrate --prior-correction)")
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
                        help="compute in bfloat16 with float32 weights: faster only with "
                             "AVX512-BF16, AMX or a recent GPU (elsewhere emulated, several times "
                             "slower; train warns); the shipped model is float32")
    parser.add_argument("--colour-shift", type=float, default=0.0,
                        help="re-render half the training images as another dermoscope or camera "
                             "might: per-channel gains and an exposure gain in 1 +- S, a tone curve "
                             "x^g with g in [1/(1+2S), 1+2S] (e.g. 0.15); 0 = off")
    args = parser.parse_args(argv)
    if not 0.0 <= args.balanced_sampling <= 1.0:
        parser.error("--balanced-sampling must be between 0 and 1")
    if not 0.0 <= args.ema_momentum < 1.0:
        parser.error("--ema-momentum must be at least 0 and below 1")
    if not 0.0 <= args.colour_shift <= 0.5:
        parser.error("--colour-shift must be between 0 and 0.5")
    if args.time_budget is not None and not args.time_budget > 0:
        parser.error("--time-budget must be a positive number of minutes")
    if (args.folds is None) != (args.fold is None):
        parser.error("--folds and --fold go together")
    if not 0.0 <= args.teacher_weight <= 1.0:
        parser.error("--teacher-weight must be between 0 and 1")
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


def stopping_patience(args) -> int:
    """Early stopping's patience: --patience when the best epoch is shipped; with --ship last,
    the run always goes to its epoch limit (or time budget)."""
    return args.patience if args.ship == "best" else args.epochs


def shipped_epoch(state: dict, ship: str) -> int:
    """The epoch whose weights `finish` ships under --ship `ship`."""
    return state["best_epoch"] if ship == "best" else state["completed_epochs"]


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
            probabilities = softmax(logits)
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
    config.quiet_tensorflow()
    import keras

    keras.utils.set_random_seed(args.seed)
    work_dir = args.work_dir or Path(".training") / args.name
    work_dir.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    widths = tuple(int(width) for width in args.widths.split(","))
    canvas = round(args.input_size * CANVAS_SCALE)

    rows = data.read_ham10000(args.data, args.limit)
    split_path = work_dir / "split.csv"
    if args.resume and split_path.exists():
        split = data.read_split(split_path)
    elif args.folds:
        assigned = folds.read_folds(args.folds)
        split = folds.split_for_fold({row["image_id"]: assigned[row["image_id"]] for row in rows}, args.fold)
        data.write_split(split_path, rows, split)
    else:
        split = data.split_by_lesion(rows, args.val_fraction, args.seed)
        data.write_split(split_path, rows, split)

    precision = keras.mixed_precision.global_policy()
    if args.mixed_precision:
        if not bfloat16_is_native():
            print("warning: --mixed-precision on a CPU without AVX512-BF16 or AMX and no GPU: "
                  "bfloat16 is emulated here, several times slower than float32", flush=True)
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model, state = fit(args, work_dir, rows, split, canvas, widths)
    finally:
        # Whatever happens, the shipped model (and anything else in this process) is float32.
        keras.mixed_precision.set_global_policy(precision)
    train_rows = [row for row in rows if split[row["image_id"]] == "train"]
    finish(args, model, work_dir, state, widths, train_rows, len(rows) - len(train_rows))
    return 0


def bfloat16_is_native() -> bool:
    """True with a GPU, or a CPU that computes bfloat16 itself (AVX512-BF16 or AMX); elsewhere
    TensorFlow emulates it, several times slower than float32."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def fit(args, work_dir, rows, split, canvas, widths):
    """Train (or resume) under the current dtype policy; returns (model, state) after the last epoch."""
    import keras

    is_val = np.array([split[row["image_id"]] == "val" for row in rows])
    canvases, val_inputs, meta, labels = data.load_arrays(args.data, rows, args.input_size, canvas,
                                                          served=is_val)
    # Validation loss is weighted by inverse frequency, whatever the training sampling.
    weights = class_weights(labels[~is_val])
    drawn, loss_weights = sampling_and_loss_weights(labels[~is_val], args.balanced_sampling)
    print(f"{(~is_val).sum()} training / {is_val.sum()} validation images; per class drawn share "
          "and loss weight: " + ", ".join(f"{c} {p:.1%} x{w:.2f}"
                                          for c, p, w in zip(CLASSES, drawn, loss_weights)), flush=True)

    if args.teacher_views:
        dataset, train_examples = _teacher_view_dataset(args, rows, is_val, meta, labels, drawn, loss_weights)
    else:
        dataset = augmented_dataset(canvases[~is_val], meta[~is_val], labels[~is_val], drawn,
                                    loss_weights, args.input_size, args.batch_size, args.seed,
                                    args.colour_shift)
        train_examples = int((~is_val).sum())
    steps_per_epoch = max(1, train_examples // args.batch_size)

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
        return why_training_ended(state, args.epochs, stopping_patience(args), args.time_budget)

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


def class_balanced(probabilities: np.ndarray, train_labels: np.ndarray) -> np.ndarray:
    """A teacher's probabilities (n, classes), which follow the class frequencies it was trained
    at (HAM10000's, as do `train_labels`), divided by those frequencies and renormalised.

    Why: the sampler and loss weights (`sampling_and_loss_weights`) give every class the same
    share of the loss, so from one-hot labels the network learns a class-balanced posterior. Raw
    teacher outputs would pull it back to the natural frequencies, under which a melanoma is
    rarely the most likely class; balanced, both parts of a target answer the same question."""
    counts = np.bincount(train_labels, minlength=probabilities.shape[1]).astype(np.float64)
    frequencies = np.maximum(counts, 1) / counts.sum()
    balanced = probabilities / frequencies
    return (balanced / balanced.sum(axis=1, keepdims=True)).astype(np.float32)


# What each view's teacher target is the output on, as the model card says it.
TEACHER_VIEWS = {"same": "the same device-style view",
                 "clean": "the image itself (view 0), for every device-style view of it"}


# The class frequencies the teacher's probabilities are brought to, as the model card says it.
TEACHER_PRIORS = {"balanced": "brought to balanced class frequencies",
                  "natural": "at HAM10000's class frequencies, as the teacher gives them"}


def teacher_targets(probabilities: np.ndarray, labels: np.ndarray, weight: float, view: str,
                    prior: str = "balanced") -> np.ndarray:
    """Training targets (n * views, classes) for the cached views of n images, view-major within
    each image: (1 - weight) one-hot label + weight teacher probabilities, class-balanced
    (`class_balanced`) unless `prior` is "natural".

    `probabilities` is (n, views, classes), the teacher's output on each view; with `view` "same"
    each view is matched to the teacher's output on it, with "clean" every view of an image to
    the teacher's output on view 0, the image itself: the re-rendered lesion is the same lesion.
    """
    count, views, classes = probabilities.shape
    if view == "clean":
        probabilities = np.repeat(probabilities[:, :1], views, axis=1)
    taught = probabilities.reshape(-1, classes).astype(np.float32)
    if prior == "balanced":
        taught = class_balanced(taught, labels)
    one_hot = np.eye(classes, dtype=np.float32)[np.repeat(labels, views)]
    return ((1 - weight) * one_hot + weight * taught).astype(np.float32)


def _teacher_view_dataset(args, rows, is_val, meta, labels, drawn, loss_weights):
    """(dataset, examples per epoch) over the teacher cache's views of the training rows, each
    view's target mixing its one-hot label and the teacher's probabilities on that view. An epoch
    draws as many views as there are training images, so it takes as long as one without views."""
    train_rows = [row for row, val in zip(rows, is_val) if not val]
    cache = teacher.read_cache(args.teacher_views)
    view_count = cache["probabilities"].shape[1]
    index = {image_id: position for position, image_id in enumerate(cache["image_ids"])}
    missing = [row["image_id"] for row in train_rows if row["image_id"] not in index]
    if missing:
        raise SystemExit(f"{args.teacher_views} has no teacher outputs for {len(missing)} training images, "
                         f"e.g. {missing[0]}: finish it with dermalens.training.teacher --resume")
    teacher_probabilities = np.asarray(cache["probabilities"], np.float32)[[index[row["image_id"]] for row in train_rows]]
    pixels = data.load_views(args.data, train_rows, view_count, args.input_size)
    train_labels = np.repeat(labels[~is_val], view_count)
    targets = teacher_targets(teacher_probabilities, labels[~is_val], args.teacher_weight, args.teacher_view,
                              args.teacher_prior)
    dataset = view_dataset(pixels.reshape(-1, *pixels.shape[2:]), np.repeat(meta[~is_val], view_count, 0),
                           targets, train_labels, drawn, loss_weights, args.batch_size, args.seed)
    return dataset, len(train_rows)


def finish(args, model, work_dir, state, widths, train_rows, val_count):
    """Ship the best epoch: weights, training artefacts and the card, then calibrate the card."""
    from dermalens.inference import sha256_of_file
    from dermalens.network import build_resnet, explained_stride

    # The checkpoint holds the last epoch's weights (the EMA average, when on).
    model.load_weights(work_dir / ("best.weights.h5" if args.ship == "best" else "checkpoint.keras"))
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
        "preprocessing_version": preprocessing.VERSION,
        "training": {
            "command": "python -m dermalens.train " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "initialised_from": str(args.init_weights) if args.init_weights else "random (from scratch)",
            "data": "HAM10000 (ISIC 2018 Task 3 training set), 200x150 copies, CC BY-NC 4.0",
            "split": (f"fold {args.fold} of the lesion-grouped folds in {args.folds.name} held out"
                      if args.folds else f"by lesion_id, stratified by dx, {args.val_fraction:.0%} of "
                                         f"lesions held out, seed {args.seed}"),
            "distillation": (f"function matching: {args.teacher_weight:.0%} of each target is the "
                             f"{teacher.TEACHER} teacher's output on {TEACHER_VIEWS[args.teacher_view]}, "
                             f"{TEACHER_PRIORS[args.teacher_prior]} (views recipe "
                             f"{device_views.VERSION}; {args.teacher_views.name})"
                             if args.teacher_views else "none"),
            "train_images": len(train_rows),
            "class_counts": {name: sum(row["dx"] == name for row in train_rows) for name in CLASSES},
            "validation_images": val_count,
            "epochs_run": state["completed_epochs"],
            "best_epoch": state["best_epoch"],
            "shipped_epoch": shipped_epoch(state, args.ship),
            "shipped": ("the best validation balanced accuracy" if args.ship == "best"
                        else "the last epoch"),
            "ended_by": why_training_ended(state, args.epochs, stopping_patience(args), args.time_budget),
            "imbalance": (f"each class drawn in proportion to n^{1 - args.balanced_sampling:g} "
                          f"(n = its training images) and its loss weighted so every class has "
                          f"the same expected share of the loss"),
            # From the trained model, not the flag: a resumed checkpoint keeps its own policy.
            "arithmetic": ("mixed bfloat16 (float32 weights)"
                           if any(layer.dtype_policy.compute_dtype == "bfloat16" for layer in model.layers)
                           else "float32"),
            "weight_averaging": (f"exponential moving average of the weights, momentum "
                                 f"{args.ema_momentum:g} per step" if args.ema_momentum else "none"),
            "augmentation": "random square crops (49-100% of the area), flips, 90-degree "
                            "rotations, brightness/contrast/saturation/hue jitter, metadata dropout"
                            + (f", half the images re-rendered with channel and exposure gains in "
                               f"1 +- {args.colour_shift:g} and a tone curve x^g, g in "
                               f"[1/{1 + 2 * args.colour_shift:g}, {1 + 2 * args.colour_shift:g}]"
                               if args.colour_shift else ""),
        },
        "heatmap": {"method": "LayerCAM (a Grad-CAM variant) on the network's last stage but one",
                    "cells": args.input_size // explained_stride(shipped)},
        "sha256": sha256_of_file(weights_path),
    }, indent=2) + "\n")
    calibrate.calibrate(card_path, args.data, tta=not args.no_tta, prior_correction=args.prior_correction)


if __name__ == "__main__":
    sys.exit(main())
