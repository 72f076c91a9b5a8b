"""An ensemble model card: served as one classifier, each member's file checked, assembled by a tool.

The members are copies of the session's tiny network (`trained`), told apart by their
temperatures and gate limits, so what the ensemble adds can be computed by hand.
"""

import csv
import json
import shutil

import numpy as np
import pytest

from dermalens import preprocessing
from dermalens.assessment import assess_image
from dermalens.inference import ensemble_sha256, softmax
from dermalens.lesions import CLASSES
from tests.images import lesion_array

pytestmark = pytest.mark.tensorflow

TEMPERATURES = (1.0, 2.5)


def write_ensemble(trained, folder, temperatures=TEMPERATURES, gate_limits=({}, {})) -> dict:
    """A card `duo.json` in folder whose members are copies of the tiny network, member i with
    temperatures[i] and gate thresholds overridden by gate_limits[i]; returns the card."""
    card = json.loads((trained / "models" / "tiny.json").read_text())
    members = []
    for number, (temperature, limits) in enumerate(zip(temperatures, gate_limits), start=1):
        shutil.copy(trained / "models" / "tiny.keras", folder / f"duo.member{number}.keras")
        shutil.copy(trained / "models" / card["gate"]["file"], folder / f"duo.member{number}.gate.npz")
        members.append({"weights": f"duo.member{number}.keras", "sha256": card["sha256"],
                        "temperature": temperature,
                        "gate": {**card["gate"], "file": f"duo.member{number}.gate.npz",
                                 "thresholds": {**card["gate"]["thresholds"], **limits}}})
    ensemble = {**{key: card[key] for key in ("version", "input_size", "classes", "preprocessing",
                                              "preprocessing_version", "tta", "thresholds")},
                "name": "duo", "members": members,
                "sha256": ensemble_sha256([member["sha256"] for member in members])}
    (folder / "duo.json").write_text(json.dumps(ensemble))
    return ensemble


def test_an_ensemble_answers_the_mean_of_its_members_calibrated_probabilities(trained, tmp_path):
    from dermalens.inference import KerasClassifier

    card = write_ensemble(trained, tmp_path)
    ensemble = KerasClassifier(tmp_path / "duo.json")
    single = KerasClassifier(trained / "models" / "tiny.json")
    assert len(ensemble.members) == 2 and ensemble.info.sha256 == card["sha256"]
    prepared = preprocessing.prepare(lesion_array(200, 150, seed=3))
    prediction = ensemble.analyse(prepared, age=60, sex="female", site="back")

    image = preprocessing.network_input(prepared, card["input_size"]).tensor[None]
    metadata = preprocessing.encode_metadata(60, "female", "back")[None]
    logits = single.members[0].runner(image, metadata)[0][0]
    expected = np.mean([softmax(logits, temperature) for temperature in TEMPERATURES], axis=0)
    np.testing.assert_allclose([prediction.probabilities[name] for name in CLASSES], expected, atol=1e-6)
    assert prediction.heatmap_class == CLASSES[int(np.argmax(expected))]
    assert prediction.heatmap.shape == (card["input_size"],) * 2 and np.isfinite(prediction.heatmap).all()
    assert len(prediction.embeddings) == 2


@pytest.mark.parametrize("strict_member", [0, 1], ids=["first member", "second member"])
def test_an_ensemble_declines_an_image_any_member_gate_declines(trained, tmp_path, strict_member):
    from dermalens.inference import KerasClassifier

    # No real image is this bright on average: the strict member calls every image too dark.
    limits = [{}, {}]
    limits[strict_member] = {"min_luminance": 255.0}
    write_ensemble(trained, tmp_path, gate_limits=limits)
    assessment = assess_image(KerasClassifier(tmp_path / "duo.json"), lesion_array(200, 150), explain=False)
    assert assessment.risk_category == "indeterminate"
    assert any("too dark" in reason for reason in assessment.gate_reasons)


def test_an_ensemble_whose_gates_all_accept_an_image_gives_each_reason_once(trained, tmp_path):
    from dermalens.inference import KerasClassifier

    write_ensemble(trained, tmp_path)
    classifier = KerasClassifier(tmp_path / "duo.json")
    dark = (lesion_array(200, 150) * 0.1).astype(np.uint8)
    reasons = assess_image(classifier, dark, explain=False).gate_reasons
    assert reasons and len(reasons) == len(set(reasons))


@pytest.mark.parametrize("damage, message", [
    (lambda folder, card: (folder / "duo.member2.keras").write_bytes(b"not the released weights"),
     "duo.member2.keras have SHA-256"),
    (lambda folder, card: (folder / "duo.member1.keras").unlink(), "weights not found"),
    (lambda folder, card: (folder / "duo.member2.gate.npz").write_bytes(b"changed"), "Gate parameters"),
    (lambda folder, card: (folder / "duo.json").write_text(json.dumps({**card, "sha256": "0" * 64})),
     "digest of its members"),
    (lambda folder, card: (folder / "duo.json").write_text(json.dumps(
        {**card, "members": card["members"][:1]})), "digest of its members"),
    (lambda folder, card: (folder / "duo.json").write_text(json.dumps({**card, "members": []})),
     "lists no member"),
    (lambda folder, card: (folder / "duo.json").write_text(json.dumps({**card, "members": [{"weights": "x"}]})),
     "not valid"),
], ids=["tampered member", "missing member", "tampered gate", "edited digest", "member dropped",
        "no members", "malformed member"])
def test_an_ensemble_with_any_member_not_as_released_is_refused(trained, tmp_path, damage, message):
    from dermalens.inference import KerasClassifier, ModelLoadError

    card = write_ensemble(trained, tmp_path)
    damage(tmp_path, card)
    with pytest.raises(ModelLoadError, match=message):
        KerasClassifier(tmp_path / "duo.json")


def second_member(trained, folder, split_rows=None, name="tiny2", **changes) -> str:
    """The tiny network copied to folder as a second calibrated card, `name`, with another
    temperature, the card's other `changes` and, if split_rows, another split; returns the
    card's path."""
    card = json.loads((trained / "models" / "tiny.json").read_text())
    shutil.copy(trained / "models" / "tiny.keras", folder / f"{name}.keras")
    shutil.copy(trained / "models" / card["gate"]["file"], folder / f"{name}.gate.npz")
    shutil.copy(trained / "models" / "tiny.training-log.csv", folder / f"{name}.training-log.csv")
    split = folder / f"{name}.split.csv"
    shutil.copy(trained / "models" / "tiny.split.csv", split)
    if split_rows is not None:
        with open(split, "w", newline="") as handle:
            csv.writer(handle).writerows([["image_id", "split"], *split_rows])
    (folder / f"{name}.json").write_text(json.dumps({**card, "name": name, "temperature": 2.0,
                                                     "gate": {**card["gate"], "file": f"{name}.gate.npz"},
                                                     **changes}))
    return str(folder / f"{name}.json")


def out_of_fold_predictions(folder) -> str:
    """An `average` output folder: 10 images per class, each most likely its own class."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    with open(folder / "predictions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "dx", "predicted", "indeterminate", "notice", *CLASSES])
        for index in range(70):
            truth = index % len(CLASSES)
            probabilities = rng.dirichlet(np.ones(len(CLASSES)))
            probabilities[truth] += 1.0 if index % 5 else 0.0
            probabilities /= probabilities.sum()
            writer.writerow([f"ISIC_{index:05d}", CLASSES[truth], CLASSES[int(probabilities.argmax())],
                             int(index == 3), 0, *np.round(probabilities, 6)])
    return str(folder)


def ensemble_args(trained, folder, second, *extra) -> list[str]:
    return ["--data", str(trained / "data"), "--member", str(trained / "models" / "tiny.json"),
            "--member", second, "--name", "pair", "--version", "9.9.9", "--out", str(folder / "out"),
            "--out-of-fold", out_of_fold_predictions(folder / "oof"), *extra]


def test_the_ensemble_tool_assembles_a_card_the_app_serves(trained, tmp_path, capsys):
    from dermalens.inference import KerasClassifier, sha256_of_file
    from dermalens.training import data, ensemble, model_card

    second = second_member(trained, tmp_path)
    assert ensemble.main(ensemble_args(trained, tmp_path, second, "--misses-as",
                                       str(trained / "models" / "tiny.json"))) == 0
    out = tmp_path / "out"
    card = json.loads((out / "pair.json").read_text())
    assert [member["temperature"] for member in card["members"]] == [
        json.loads((trained / "models" / "tiny.json").read_text())["temperature"], 2.0]
    for number, member in enumerate(card["members"], start=1):
        assert member["weights"] == f"pair.member{number}.keras"
        assert (out / member["training_log"]).is_file()
        assert sha256_of_file(out / member["weights"]) == member["sha256"]
        assert sha256_of_file(out / member["gate"]["file"]) == member["gate"]["sha256"]
    assert (out / "pair.split.csv").read_text() == (trained / "models" / "tiny.split.csv").read_text()
    split = data.read_split(out / "pair.split.csv")
    assert card["validation"]["n"] == sum(side == "val" for side in split.values())
    assert card["out_of_fold_risk"]["n"] == 70
    assert set(card["thresholds"]) >= {"monitor_max_malignant", "urgent_melanoma", "min_confidence"}
    assert "tiny" in card["threshold_rules"]["monitor_max_malignant"]
    classifier = KerasClassifier(out / "pair.json")
    assert classifier.info.version == "9.9.9" and classifier.info.thresholds == card["thresholds"]
    text = model_card.render(card)
    assert "Ensemble of 2 networks" in text and text.count(card["members"][0]["sha256"]) == 2
    assert "out-of-fold predictions" in text and "Member 2." in text
    assert "thresholds (fitted on 70 out-of-fold predictions)" in capsys.readouterr().out


@pytest.mark.parametrize("problem, message", [
    ("other split", "differs from"),
    ("one member", "two or more"),
    ("no out-of-fold predictions", "no predictions.csv"),
    ("no training log", "no tiny2.training-log.csv"),
    ("uncalibrated member", "not calibrated"),
])
def test_the_ensemble_tool_refuses_what_it_cannot_assemble_and_writes_nothing(
        trained, tmp_path, capsys, problem, message):
    from dermalens.training import ensemble

    second = second_member(trained, tmp_path, split_rows=[["ISIC_00000", "val"]] if problem == "other split" else None)
    args = ensemble_args(trained, tmp_path, second)
    if problem == "one member":
        args[4:6] = []
    if problem == "no out-of-fold predictions":
        (tmp_path / "oof" / "predictions.csv").unlink()
    if problem == "no training log":
        (tmp_path / "tiny2.training-log.csv").unlink()
    if problem == "uncalibrated member":
        card = json.loads((tmp_path / "tiny2.json").read_text())
        (tmp_path / "tiny2.json").write_text(json.dumps({key: value for key, value in card.items() if key != "gate"}))
    assert ensemble.main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_members_of_an_earlier_preprocessing_version_are_carried_over_only_when_asked(trained, tmp_path, capsys):
    """Refused as the app refuses them; with --carry-over-preprocessing the ensemble is served and
    validated under this code's preprocessing, and its card says the networks were not."""
    from dermalens.inference import KerasClassifier
    from dermalens.training import ensemble, model_card

    earlier = preprocessing.VERSION - 1
    members = [second_member(trained, tmp_path, name=name, preprocessing_version=earlier) for name in ("old1", "old2")]
    args = ensemble_args(trained, tmp_path, members[1])
    args[3] = members[0]
    assert ensemble.main(args) == 2
    assert f"preprocessing version {earlier}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

    assert ensemble.main([*args, "--carry-over-preprocessing", str(earlier)]) == 0
    card = json.loads((tmp_path / "out" / "pair.json").read_text())
    assert card["preprocessing_version"] == preprocessing.VERSION
    assert card["trained_with_preprocessing_version"] == earlier and card["carried_over_members"] == [1, 2]
    assert card["preprocessing"] == preprocessing.describe(card["input_size"])
    assert card["calibration_command"].endswith(f"--carry-over-preprocessing {earlier}")
    assert KerasClassifier(tmp_path / "out" / "pair.json").info.version == "9.9.9"
    assert f"trained and calibrated under preprocessing version {earlier}" in model_card.render(card)


def test_a_member_of_an_earlier_preprocessing_version_may_be_carried_over_beside_a_current_one(trained, tmp_path):
    from dermalens.inference import KerasClassifier
    from dermalens.training import ensemble, model_card

    earlier = preprocessing.VERSION - 1
    args = ensemble_args(trained, tmp_path, second_member(trained, tmp_path, preprocessing_version=earlier))
    assert ensemble.main(args) == 2
    assert ensemble.main([*args, "--carry-over-preprocessing", str(earlier)]) == 0
    card = json.loads((tmp_path / "out" / "pair.json").read_text())
    assert card["preprocessing_version"] == preprocessing.VERSION and card["carried_over_members"] == [2]
    assert KerasClassifier(tmp_path / "out" / "pair.json").info.version == "9.9.9"
    assert f"Member 2 was trained and calibrated under preprocessing version {earlier};" in model_card.render(card)


def test_members_all_of_this_codes_preprocessing_are_not_marked_as_carried_over(trained, tmp_path):
    from dermalens.training import ensemble

    earlier = preprocessing.VERSION - 1
    args = ensemble_args(trained, tmp_path, second_member(trained, tmp_path))
    assert ensemble.main([*args, "--carry-over-preprocessing", str(earlier)]) == 0
    card = json.loads((tmp_path / "out" / "pair.json").read_text())
    assert "trained_with_preprocessing_version" not in card and "carried_over_members" not in card


def test_carrying_over_asks_for_an_earlier_version(trained, tmp_path, capsys):
    from dermalens.training import ensemble

    args = ensemble_args(trained, tmp_path, second_member(trained, tmp_path))
    with pytest.raises(SystemExit):
        ensemble.main([*args, "--carry-over-preprocessing", str(preprocessing.VERSION)])
    assert "earlier version" in capsys.readouterr().err


def test_a_failure_while_validating_leaves_the_output_folder_as_it_was(trained, tmp_path, monkeypatch):
    from dermalens.training import ensemble

    out = tmp_path / "out"
    out.mkdir()
    (out / "pair.json").write_text("the model in service")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(ensemble, "validate", fail)
    assert ensemble.main(ensemble_args(trained, tmp_path, second_member(trained, tmp_path))) == 2
    assert [path.name for path in out.iterdir()] == ["pair.json"]
    assert (out / "pair.json").read_text() == "the model in service"


def test_calibrate_refuses_an_ensemble_card(trained, tmp_path):
    from dermalens.training import calibrate

    write_ensemble(trained, tmp_path)
    with pytest.raises(SystemExit, match="ensemble"):
        calibrate.calibrate(tmp_path / "duo.json", trained / "data")
