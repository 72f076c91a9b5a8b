"""Training, evaluation and the Keras inference service, on a tiny generated dataset (seconds).

A session-scoped fixture (`trained`, in conftest.py) trains a small network once; the tests
then use its model card and weights like the shipped ones.
"""

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dermalens import preprocessing
from dermalens.lesions import CLASSES
from dermalens.preprocessing import prepare
from dermalens.risk import CURRENT_CATEGORIES
from tests.images import encode, lesion_array
from tests.training.tiny import copy_weights_and_gate

pytestmark = pytest.mark.tensorflow

def logged_epochs(work_dir):
    """The epoch numbers in a work dir's training log, in order."""
    with open(work_dir / "training-log.csv") as handle:
        return [row["epoch"] for row in csv.DictReader(handle)]


def test_training_writes_every_artefact(trained):
    models = trained / "models"
    for suffix in (".keras", ".json", ".gate.npz", ".split.csv", ".training-log.csv",
                   ".training-curve.png"):
        assert (models / f"tiny{suffix}").is_file(), suffix
    card = json.loads((models / "tiny.json").read_text())
    assert card["classes"] == list(CLASSES) and card["input_size"] == 32
    assert card["sha256"] == hashlib.sha256((models / "tiny.keras").read_bytes()).hexdigest()
    assert card["temperature"] > 0
    assert set(card["thresholds"]) == set(card["threshold_rules"]) == {
        "urgent_malignant", "urgent_melanoma", "referral_keratinocyte", "monitor_max_malignant", "min_confidence"}
    assert (models / card["gate"]["file"]).is_file() and isinstance(card["coverage"], list)
    assert {"balanced_accuracy", "auc_malignant", "ece", "recall"} <= set(card["validation"])
    with open(models / "tiny.training-log.csv") as handle:
        log = list(csv.DictReader(handle))
    assert [row["epoch"] for row in log] == ["1", "2"]
    assert {"loss", "val_loss", "val_balanced_accuracy"} <= set(log[0])


def test_a_prior_correction_is_added_to_the_network_recorded_in_the_card_and_never_repeated(trained, tmp_path):
    import keras

    from dermalens.training import calibrate

    shutil.copytree(trained / "models", tmp_path / "models")
    card_path = tmp_path / "models" / "tiny.json"
    before = keras.models.load_model(tmp_path / "models" / "tiny.keras").get_layer("logits").get_weights()[1]
    calibrate.main(["--data", str(trained / "data"), "--model-card", str(card_path), "--prior-correction"])
    card = json.loads(card_path.read_text())
    correction = card["training"]["prior_correction"]
    after = keras.models.load_model(tmp_path / "models" / "tiny.keras").get_layer("logits").get_weights()[1]
    np.testing.assert_allclose(after - before, [correction["offsets"][name] for name in CLASSES], atol=1e-5)
    assert card["sha256"] == hashlib.sha256((tmp_path / "models" / "tiny.keras").read_bytes()).hexdigest()
    assert card["calibration_command"].endswith("--prior-correction")
    with pytest.raises(SystemExit, match="already has its class prior corrected"):
        calibrate.main(["--data", str(trained / "data"), "--model-card", str(card_path), "--prior-correction"])
    assert [p.name for p in (tmp_path / "models").glob("*.corrected.keras")] == []


def test_split_keeps_each_lesion_on_one_side(trained):
    with open(trained / "models" / "tiny.split.csv") as handle:
        rows = list(csv.DictReader(handle))
    sides = {}
    for row in rows:
        sides.setdefault(row["lesion_id"], set()).add(row["split"])
    assert all(len(side) == 1 for side in sides.values())
    assert {row["split"] for row in rows} == {"train", "val"}


def test_resume_continues_from_the_checkpoint(trained, tmp_path):
    from dermalens.training import train

    work = tmp_path / "work"
    shutil.copytree(trained / "work", work)
    args = ["--data", str(trained / "data"), "--out", str(tmp_path / "models"), "--name", "tiny",
            "--work-dir", str(work), "--epochs", "3", "--input-size", "32", "--widths", "8,8,16,16",
            "--batch-size", "8", "--val-fraction", "0.5", "--resume"]
    assert train.main(args) == 0
    assert logged_epochs(work) == ["1", "2", "3"]


def test_resume_of_an_early_stopped_run_trains_no_further_unless_given_more_patience(trained, tmp_path):
    from dermalens.training import train

    work = tmp_path / "work"
    shutil.copytree(trained / "work", work)
    state = json.loads((work / "state.json").read_text())
    (work / "state.json").write_text(json.dumps({**state, "epochs_without_improvement": 2}))
    args = ["--data", str(trained / "data"), "--out", str(tmp_path / "models"), "--name", "tiny",
            "--work-dir", str(work), "--epochs", "4", "--input-size", "32", "--widths", "8,8,16,16",
            "--batch-size", "8", "--val-fraction", "0.5", "--resume"]

    assert train.main(args + ["--patience", "2"]) == 0
    assert logged_epochs(work) == ["1", "2"]
    assert (tmp_path / "models" / "tiny.keras").exists()
    assert train.main(args + ["--patience", "3"]) == 0
    assert logged_epochs(work)[:3] == ["1", "2", "3"]


def test_ship_last_trains_to_the_epoch_limit_and_ships_the_last_epoch(trained, tmp_path):
    """--ship last ignores early stopping and ships the final weights, not the best epoch's."""
    import keras

    from dermalens.training import train

    work = tmp_path / "work"
    args = ["--data", str(trained / "data"), "--out", str(tmp_path / "models"), "--name", "tiny",
            "--work-dir", str(work), "--epochs", "3", "--patience", "1", "--input-size", "32",
            "--widths", "8,8,16,16", "--batch-size", "8", "--val-fraction", "0.5", "--ship", "last"]
    assert train.main(args) == 0
    assert logged_epochs(work) == ["1", "2", "3"]
    card = json.loads((tmp_path / "models" / "tiny.json").read_text())
    assert card["training"]["shipped_epoch"] == 3
    assert card["training"]["shipped"] == "the last epoch"
    shipped = keras.models.load_model(tmp_path / "models" / "tiny.keras")
    last = keras.models.load_model(work / "checkpoint.keras")
    for mine, theirs in zip(shipped.get_weights(), last.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def test_a_time_budget_ends_training_after_the_last_epoch_that_fits(trained, tmp_path):
    from dermalens.training import train

    work, models = tmp_path / "work", tmp_path / "models"
    # A budget shorter than any epoch: the first epoch always runs (nothing is measured before
    # it), then the stage ends and ships it.
    args = ["--data", str(trained / "data"), "--out", str(models), "--name", "tiny",
            "--work-dir", str(work), "--epochs", "3", "--input-size", "32", "--widths", "8,8,16,16",
            "--batch-size", "8", "--val-fraction", "0.5", "--time-budget", "0.0001"]

    assert train.main(args) == 0
    assert logged_epochs(work) == ["1"]
    assert json.loads((work / "state.json").read_text())["training_seconds"] > 0
    card = json.loads((models / "tiny.json").read_text())
    assert card["training"]["epochs_run"] == 1
    assert card["training"]["ended_by"].startswith("time budget")
    assert train.main(args + ["--resume"]) == 0
    assert logged_epochs(work) == ["1"]


def test_training_with_balanced_sampling_and_weight_averaging(trained, tmp_path):
    from dermalens.training import train

    args = ["--data", str(trained / "data"), "--out", str(tmp_path / "models"), "--name", "tiny",
            "--work-dir", str(tmp_path / "work"), "--epochs", "2", "--input-size", "32",
            "--widths", "8,8,16,16", "--batch-size", "8", "--val-fraction", "0.5",
            "--balanced-sampling", "0.5", "--ema-momentum", "0.9",
            "--init-weights", str(trained / "models" / "tiny.keras")]
    assert train.main(args) == 0
    training = json.loads((tmp_path / "models" / "tiny.json").read_text())["training"]
    assert training["initialised_from"].endswith("tiny.keras")
    assert training["imbalance"].startswith("each class drawn in proportion to n^0.5")
    assert training["weight_averaging"] == "exponential moving average of the weights, momentum 0.9 per step"
    assert training["arithmetic"] == "float32"
    assert len((tmp_path / "work" / "training-log.csv").read_text().splitlines()) == 3


def test_training_on_a_fold_towards_a_teacher_on_fixed_views(trained, tmp_path):
    """Function matching: the student trains on the cached views, with the teacher's outputs on
    them in its targets, validating on one lesion-grouped fold."""
    from dermalens.training import data, folds, teacher, train

    rows = data.read_ham10000(trained / "data")
    folds.write_folds(tmp_path / "folds.csv", rows, folds.assign_folds(rows, folds=2))
    teacher.write_cache(tmp_path / "views.npz", [row["image_id"] for row in rows],
                        np.full((len(rows), 2, len(CLASSES)), 1 / len(CLASSES)))
    args = ["--data", str(trained / "data"), "--out", str(tmp_path / "models"), "--name", "tiny",
            "--work-dir", str(tmp_path / "work"), "--epochs", "1", "--input-size", "32",
            "--widths", "8,8,16,16", "--batch-size", "8", "--folds", str(tmp_path / "folds.csv"),
            "--fold", "1", "--teacher-views", str(tmp_path / "views.npz"), "--teacher-weight", "0.5",
            "--teacher-view", "clean"]
    assert train.main(args) == 0
    card = json.loads((tmp_path / "models" / "tiny.json").read_text())
    assert ("teacher's output on the image itself (view 0), for every device-style view"
            in card["training"]["distillation"])
    assert card["training"]["split"].startswith("fold 1 of the lesion-grouped folds in folds.csv")
    assert card["training"]["distillation"].startswith("function matching: 50%")
    held_out = {image_id for image_id, side in data.read_split(tmp_path / "models" / "tiny.split.csv").items()
                if side == "val"}
    assert held_out == {image_id for image_id, fold in folds.read_folds(tmp_path / "folds.csv").items() if fold == 1}
    teacher.write_cache(tmp_path / "views.npz", [rows[0]["image_id"]], np.full((1, 2, len(CLASSES)), 1 / 7))
    with pytest.raises(SystemExit, match="no teacher outputs"):
        train.main(args[:6] + ["--work-dir", str(tmp_path / "work2")] + args[8:])


def test_out_of_fold_pools_each_fold_model_on_the_fold_it_never_saw(trained, tmp_path, capsys):
    """The yardstick: one model per fold, each run on its own fold, every image predicted once."""
    from dermalens.training import data, folds, out_of_fold, train

    rows = data.read_ham10000(trained / "data")
    folds.write_folds(tmp_path / "folds.csv", rows, folds.assign_folds(rows, folds=2))
    cards = []
    for fold in (0, 1):
        assert train.main(["--data", str(trained / "data"), "--out", str(tmp_path / f"fold{fold}"),
                           "--name", f"tiny-fold{fold}", "--work-dir", str(tmp_path / f"work{fold}"),
                           "--epochs", "1", "--input-size", "32", "--widths", "8,8,16,16",
                           "--batch-size", "8", "--folds", str(tmp_path / "folds.csv"),
                           "--fold", str(fold)]) == 0
        cards.append(str(tmp_path / f"fold{fold}" / f"tiny-fold{fold}.json"))
    common = ["--data", str(trained / "data"), "--folds", str(tmp_path / "folds.csv")]

    assert out_of_fold.main(common + ["--model-card", cards[1], "--model-card", cards[0],
                                      "--out", str(tmp_path / "oof")]) == 0
    report = json.loads((tmp_path / "oof" / "metrics.json").read_text())
    assert report["out_of_fold"]["folds"] == [0, 1]
    assert report["out_of_fold"]["images"] == report["out_of_fold"]["of"] == len(rows) == report["n"]
    assert sum(figures["n"] for figures in report["out_of_fold"]["per_fold"].values()) == len(rows)
    fitted = report["out_of_fold"]["fitted_risk"]
    assert set(fitted["thresholds"]) == {"monitor_max_malignant", "urgent_malignant", "urgent_melanoma",
                                         "referral_keratinocyte", "min_confidence"}
    assert sum(sum(by_category.values()) for truth, by_category in fitted["risk_by_truth"].items()
               if truth in ("malignant", "benign")) == len(rows)
    with open(tmp_path / "oof" / "predictions.csv", newline="") as handle:
        predicted_fold = {row["image_id"]: int(row["fold"]) for row in csv.DictReader(handle)}
    assert predicted_fold == folds.read_folds(tmp_path / "folds.csv")

    tiny = str(trained / "models" / "tiny.json")  # validated on a random split, not on a fold
    for cards_given, message in (([tiny], "not one fold of the assignment"),
                                 ([cards[0], cards[0]], "both validate on fold 0")):
        out = tmp_path / "refused"
        assert out_of_fold.main(common + [arg for card in cards_given for arg in ("--model-card", card)]
                                + ["--out", str(out)]) == 2
        assert message in capsys.readouterr().err and not out.exists()
    assert out_of_fold.fold_of_card(Path(cards[1]), folds.read_folds(tmp_path / "folds.csv")) == 1

    # A fold card of an earlier preprocessing version is run only when carried over.
    earlier = preprocessing.VERSION - 1
    card = json.loads(Path(cards[0]).read_text())
    Path(cards[0]).write_text(json.dumps({**card, "preprocessing_version": earlier}))
    given = common + ["--model-card", cards[0], "--model-card", cards[1]]
    assert out_of_fold.main(given + ["--out", str(tmp_path / "refused")]) == 2
    assert f"preprocessing version {earlier}" in capsys.readouterr().err
    assert out_of_fold.main(given + ["--out", str(tmp_path / "carried"), "--carry-over-preprocessing",
                                     str(earlier)]) == 0
    carried = json.loads((tmp_path / "carried" / "metrics.json").read_text())
    assert carried["n"] == len(rows) and carried["balanced_accuracy"] == report["balanced_accuracy"]
    with pytest.raises(ValueError, match="not one fold"):
        out_of_fold.fold_of_card(Path(tiny), folds.read_folds(tmp_path / "folds.csv"))


def test_colour_shift_renders_a_grey_scene_within_its_white_balance_exposure_and_tone_bounds():
    import tensorflow as tf

    from dermalens.training.augment import shift_colours

    tf.random.set_seed(7)
    grey = tf.fill((4, 4, 3), 0.5)
    shift = 0.15
    # Darkest and brightest possible renderings of 0.5: both gains at their extremes, then the
    # steepest or flattest tone curve.
    darkest = (0.5 * (1 - shift) ** 2) ** (1 + 2 * shift)
    brightest = min(1.0, 0.5 * (1 + shift) ** 2) ** (1 / (1 + 2 * shift))
    renderings = np.stack([shift_colours(grey, shift).numpy() for _ in range(50)])
    assert renderings.min() >= darkest - 1e-6 and renderings.max() <= brightest + 1e-6
    pixel = renderings[:, 0, 0, :]
    assert np.all(renderings == renderings[:, :1, :1, :])  # one rendering per image, not per pixel
    assert np.ptp(pixel[:, 0] - pixel[:, 2]) > 0.05  # the white balance varies between draws
    assert np.ptp(pixel.mean(axis=1)) > 0.1  # and so does the exposure


def test_mixed_precision_training_ships_a_float32_model(trained, tmp_path):
    import keras

    from dermalens.training import train
    from dermalens.inference import KerasClassifier

    args = ["--data", str(trained / "data"), "--out", str(tmp_path / "models"), "--name", "tiny",
            "--work-dir", str(tmp_path / "work"), "--epochs", "1", "--input-size", "32",
            "--widths", "8,8,16,16", "--batch-size", "8", "--val-fraction", "0.5", "--mixed-precision",
            "--colour-shift", "0.15"]
    assert train.main(args) == 0
    assert keras.mixed_precision.global_policy().name == "float32"
    card = json.loads((tmp_path / "models" / "tiny.json").read_text())
    assert card["training"]["arithmetic"] == "mixed bfloat16 (float32 weights)"
    assert card["training"]["augmentation"].endswith(
        "half the images re-rendered with channel and exposure gains in 1 +- 0.15 and a tone curve "
        "x^g, g in [1/1.3, 1.3]")
    shipped = keras.models.load_model(tmp_path / "models" / "tiny.keras", compile=False)
    assert {layer.dtype_policy.name for layer in shipped.layers} == {"float32"}
    prediction = KerasClassifier(tmp_path / "models" / "tiny.json").analyse(prepare(lesion_array(200, 150)))
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)


def test_classifier_analyses_any_image_with_or_without_metadata(trained):
    from dermalens.inference import KerasClassifier

    classifier = KerasClassifier(trained / "models" / "tiny.json")
    for size, metadata in [((150, 200), {}), ((4000, 3000), {"age": 70, "sex": "female", "site": "face"}),
                           ((333, 500), {"sex": "male"})]:
        prediction = classifier.analyse(prepare(lesion_array(size[1], size[0])), **metadata)
        assert sum(prediction.probabilities.values()) == pytest.approx(1.0)
        assert prediction.heatmap.shape == (32, 32) and np.isfinite(prediction.heatmap).all()
        assert 0 <= prediction.heatmap.min() and prediction.heatmap.max() <= 1
    assert classifier.analyse(prepare(lesion_array()), explain=False).heatmap is None


def test_classifier_refuses_tampered_or_missing_weights(trained, tmp_path):
    from dermalens.inference import KerasClassifier, ModelLoadError

    shutil.copy(trained / "models" / "tiny.json", tmp_path / "tiny.json")
    with pytest.raises(ModelLoadError, match="weights not found"):
        KerasClassifier(tmp_path / "tiny.json")
    weights = bytearray((trained / "models" / "tiny.keras").read_bytes())
    weights[-100] ^= 0xFF
    (tmp_path / "tiny.keras").write_bytes(bytes(weights))
    with pytest.raises(ModelLoadError, match="SHA-256"):
        KerasClassifier(tmp_path / "tiny.json")
    with pytest.raises(ModelLoadError, match="card not found"):
        KerasClassifier(tmp_path / "missing.json")


def test_classifier_refuses_a_model_trained_with_other_preprocessing(trained, tmp_path):
    """A network is never served inputs prepared unlike its training inputs (e.g. a model
    trained by an older or newer DermaLens that normalised colours differently)."""
    from dermalens.inference import KerasClassifier, ModelLoadError

    from dermalens import preprocessing

    card = copy_weights_and_gate(trained, tmp_path)
    assert card["preprocessing_version"] == preprocessing.VERSION
    for version in (preprocessing.VERSION - 1, preprocessing.VERSION + 1, None):
        (tmp_path / "tiny.json").write_text(json.dumps({**card, "preprocessing_version": version}))
        with pytest.raises(ModelLoadError, match="preprocessing version"):
            KerasClassifier(tmp_path / "tiny.json")
    # The description is for readers: rewording it changes nothing.
    (tmp_path / "tiny.json").write_text(json.dumps({**card, "preprocessing": "reworded"}))
    assert KerasClassifier(tmp_path / "tiny.json").info.version == card["version"]


def test_classifier_refuses_a_gate_fitted_on_other_image_statistics(trained, tmp_path):
    """A gate's distances and limits mean something only for the statistics it was fitted on."""
    from dermalens.inference import KerasClassifier, ModelLoadError

    card = copy_weights_and_gate(trained, tmp_path)
    renamed = [name.replace("blown_out", "bright") for name in card["gate"]["statistics"]]
    for statistics in (renamed, card["gate"]["statistics"][:-1], None):
        (tmp_path / "tiny.json").write_text(json.dumps({**card, "gate": {**card["gate"], "statistics": statistics}}))
        with pytest.raises(ModelLoadError, match="other image statistics"):
            KerasClassifier(tmp_path / "tiny.json")


def test_app_refuses_to_start_on_tampered_weights(trained, tmp_path):
    from dermalens import create_app
    from dermalens.inference import ModelLoadError

    shutil.copy(trained / "models" / "tiny.json", tmp_path / "tiny.json")
    (tmp_path / "tiny.keras").write_bytes(b"not the released weights")
    with pytest.raises(ModelLoadError, match="SHA-256"):
        create_app({"MODEL_CARD": str(tmp_path / "tiny.json"), "SECRET_KEY": "x" * 40,
                    "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'db.sqlite'}"},
                   instance_path=str(tmp_path / "instance"))


def test_evaluate_writes_metrics_and_plots(trained, tmp_path, capsys):
    from dermalens.training import evaluate

    labels = tmp_path / "labels.csv"
    images = trained / "data" / "images"
    with open(labels, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "dx", "age", "sex", "localization"])
        for class_index, dx in enumerate(CLASSES):
            writer.writerow([f"ISIC_{class_index}000", dx, "", "unknown", ""])
            writer.writerow([f"ISIC_{class_index}001", dx, "45", "female", "back"])
        writer.writerow(["ISIC_missing", "nv", "", "", ""])
    out = tmp_path / "evaluation"
    assert evaluate.main(["--images", str(images), "--labels", str(labels), "--out", str(out),
                          "--model-card", str(trained / "models" / "tiny.json")]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["n"] == 14 and len(report["skipped"]) == 1
    for key in ("accuracy", "balanced_accuracy", "recall", "precision", "confusion_matrix",
                "auc_malignant", "auc_melanoma", "ece", "indeterminate_rate"):
        assert key in report
    assert np.array(report["confusion_matrix"]).sum() == 14
    low, high = report["confidence_intervals"]["balanced_accuracy"]
    assert low <= report["balanced_accuracy"] <= high
    printed = capsys.readouterr().out
    assert f"balanced accuracy {report['balanced_accuracy']:.3f} (95% CI {low:.3f}-{high:.3f})" in printed
    at_90 = report["sensitivity_at_specificity"]["malignant"]["0.90"]
    assert "malignant sensitivity at specificity 80%: " in printed and f"90%: {at_90:.3f}" in printed
    assert (out / "confusion_matrix.png").stat().st_size > 0 and (out / "roc.png").stat().st_size > 0
    assert 0 <= report["notice_rate"] <= 1 and f"colour notice rate {report['notice_rate']:.3f}" in printed
    with open(out / "predictions.csv", newline="") as handle:
        predictions = list(csv.DictReader(handle))
    assert len(predictions) == 14 and {row["notice"] for row in predictions} <= {"0", "1"}


def copy_with_a_gate_that_accepts_everything(trained, folder):
    """The tiny model copied to folder (copy_weights_and_gate), its gate limits opened wide.

    Whether the gate of a model trained for two epochs accepts a given image is not fixed from
    run to run; a test of what is printed for an assessed image must not depend on it.
    """
    card = copy_weights_and_gate(trained, folder)
    card["gate"]["thresholds"] = {name: (-1e12 if name.startswith("min_") else 1e12)
                                  for name in card["gate"]["thresholds"]}
    (folder / "tiny.json").write_text(json.dumps(card))
    return folder / "tiny.json"


def test_predict_prints_the_analysis_as_json(trained, tmp_path, capsys):
    from dermalens import predict

    card = copy_with_a_gate_that_accepts_everything(trained, tmp_path)
    image = trained / "data" / "images" / "ISIC_4000.jpg"
    assert predict.main([str(image), "--age", "50", "--sex", "male", "--site", "back",
                         "--model-card", str(card)]) == 0
    output = json.loads(capsys.readouterr().out)
    assert output["indeterminate"] is False and output["indeterminate_reasons"] == []
    assert set(output["probabilities"]) == set(CLASSES) and isinstance(output["notices"], list)
    assert output["top_class"] in CLASSES and 0 <= output["malignant_probability"] <= 1
    assert output["risk"]["category"] in CURRENT_CATEGORIES and isinstance(output["uncertain"], bool)
    assert output["inputs"] == {"age": 50, "sex": "male", "site": "back"}


def test_predict_prints_no_result_for_an_image_it_cannot_assess(trained, tmp_path, capsys):
    from dermalens import predict

    image = tmp_path / "blank.png"
    image.write_bytes(encode(np.full((300, 400, 3), 255, np.uint8), "PNG"))
    assert predict.main([str(image), "--model-card", str(trained / "models" / "tiny.json")]) == 0
    output = json.loads(capsys.readouterr().out)
    assert output["indeterminate"] is True and output["indeterminate_reasons"]
    assert "probabilities" not in output and set(output["unreliable_probabilities"]) == set(CLASSES)
    assert output["top_class"] is None and output["malignant_probability"] is None
    assert output["risk"]["category"] == "indeterminate"


def test_evaluate_measures_out_of_scope_images(trained, tmp_path):
    from dermalens.training import evaluate

    folder = tmp_path / "ood"
    folder.mkdir()
    for index, colour in enumerate([(255, 255, 255), (0, 0, 0), (30, 200, 30)]):
        (folder / f"blank-{index}.png").write_bytes(encode(np.full((300, 400, 3), colour, np.uint8), "PNG"))
    (folder / "tiny-0.png").write_bytes(encode(lesion_array(60, 60), "PNG"))
    out = tmp_path / "out"
    assert evaluate.main(["--out-of-scope", str(folder), "--out", str(out),
                          "--model-card", str(trained / "models" / "tiny.json")]) == 0
    result = json.loads((out / "out_of_scope.json").read_text())
    assert result["n"] == 4 and set(result["by_kind"]) == {"blank", "tiny"}
    assert result["by_kind"]["tiny"]["gate_flagged"] == 1.0  # below the minimum size


def test_evaluate_runs_a_card_of_an_earlier_preprocessing_version_only_when_carried_over(trained, tmp_path, capsys):
    from dermalens.training import evaluate

    earlier = preprocessing.VERSION - 1
    card = copy_weights_and_gate(trained, tmp_path)
    (tmp_path / "tiny.json").write_text(json.dumps({**card, "preprocessing_version": earlier}))
    folder = tmp_path / "ood"
    folder.mkdir()
    (folder / "blank-0.png").write_bytes(encode(np.full((300, 400, 3), 255, np.uint8), "PNG"))
    given = ["--out-of-scope", str(folder), "--model-card", str(tmp_path / "tiny.json")]
    assert evaluate.main([*given, "--out", str(tmp_path / "refused")]) == 2
    assert f"preprocessing version {earlier}" in capsys.readouterr().err and not (tmp_path / "refused").exists()
    assert evaluate.main([*given, "--out", str(tmp_path / "carried"), "--carry-over-preprocessing", str(earlier)]) == 0
    assert json.loads((tmp_path / "carried" / "out_of_scope.json").read_text())["n"] == 1


def test_explanation_tail_reproduces_the_network(trained):
    import keras

    from dermalens.network import explained_feature_layer, explanation_tail

    model = keras.models.load_model(trained / "models" / "tiny.keras", safe_mode=True)
    explained = explained_feature_layer(model)
    assert explained == "stage3_block2_out"  # the tiny network has the shipped one's four stages
    body = keras.Model(model.inputs, [model.output, model.get_layer(explained).output])
    images = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 3)).astype("float32")
    metadata = np.zeros((3, 18), "float32")
    logits, feature_maps = body({"image": images, "metadata": metadata})
    tail_logits = explanation_tail(model)([np.asarray(feature_maps), metadata])
    np.testing.assert_allclose(np.asarray(tail_logits), np.asarray(logits), rtol=1e-4, atol=1e-5)
