"""The human model card is rendered from the JSON card, including evaluations added later."""

import json
import shutil

import pytest

from dermalens.training import model_card
from dermalens.config import DEFAULT_MODEL_CARD

# A one-network card (the retired 1.2.3), for what the template renders for one network.
SINGLE_NETWORK_CARD = DEFAULT_MODEL_CARD.parent / "retired" / "1.2.3" / DEFAULT_MODEL_CARD.name


def test_size_and_crop_figures_are_stored_in_the_card_and_rendered(tmp_path):
    card_path = tmp_path / DEFAULT_MODEL_CARD.name
    shutil.copy(DEFAULT_MODEL_CARD, card_path)
    metrics = {"n": 12, "balanced_accuracy": 0.5, "recall": {"mel": 0.25}, "auc_malignant": 0.75,
               "ece": 0.125, "indeterminate_rate": 0.0625}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))

    assert model_card.main(["--model-card", str(card_path),
                            "--size-and-crop", f"zoomed=in 1.5x={tmp_path / 'metrics.json'}"]) == 0

    stored = json.loads(card_path.read_text())["size_and_crop"]
    assert stored == [{"description": "zoomed=in 1.5x", "n": 12, "balanced_accuracy": 0.5,
                       "melanoma_recall": 0.25, "auc_malignant": 0.75, "ece": 0.125,
                       "indeterminate_rate": 0.0625}]
    readme = (tmp_path / "README.md").read_text()
    assert "| zoomed=in 1.5x | 12 | 0.500 | 0.250 | 0.750 | 0.125 | 0.062 |" in readme


def test_other_device_figures_are_stored_in_the_card_and_rendered(tmp_path):
    card_path = tmp_path / DEFAULT_MODEL_CARD.name
    shutil.copy(DEFAULT_MODEL_CARD, card_path)
    metrics = {"n": 200, "balanced_accuracy": 0.5, "auc_melanoma": 0.625, "ece": 0.125,
               "indeterminate_rate": 0.25, "uncertain_rate": 0.375, "recall": {"mel": 0.75}}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))

    assert model_card.main(["--model-card", str(card_path),
                            "--other-device", f"PH2={tmp_path / 'metrics.json'}"]) == 0

    assert json.loads(card_path.read_text())["other_devices"] == [
        {"description": "PH2", "n": 200, "balanced_accuracy": 0.5, "melanoma_recall": 0.75,
         "auc_melanoma": 0.625, "ece": 0.125, "indeterminate_rate": 0.25, "uncertain_rate": 0.375}]
    readme = (tmp_path / "README.md").read_text()
    assert "## Other clinics and dermoscopes" in readme
    assert "| PH2 | 200 | 0.500 | 0.750 | 0.625 | 0.125 | 0.250 | 0.375 |" in readme


def test_the_heatmap_pointing_rate_is_stored_in_the_card_and_rendered(tmp_path):
    card_path = tmp_path / DEFAULT_MODEL_CARD.name
    shutil.copy(DEFAULT_MODEL_CARD, card_path)
    (tmp_path / "heatmap.json").write_text(json.dumps({"served": {"pointing": 0.875}}))

    assert model_card.main(["--model-card", str(card_path),
                            "--heatmap-quality", str(tmp_path / "heatmap.json")]) == 0

    assert json.loads(card_path.read_text())["heatmap"]["peak_off_lesion_rate"] == 0.125
    assert "its peak did on 12.5% of the validation images" in (tmp_path / "README.md").read_text()


@pytest.mark.parametrize("content", ['{"served": {"pointing": null}}', '{"n": 0}', "[1]", "not json"])
def test_a_heatmap_result_without_a_pointing_rate_is_refused_and_the_card_is_unchanged(tmp_path, content):
    card_path = tmp_path / DEFAULT_MODEL_CARD.name
    shutil.copy(DEFAULT_MODEL_CARD, card_path)
    before = card_path.read_bytes()
    (tmp_path / "heatmap.json").write_text(content)
    with pytest.raises(SystemExit) as refused:
        model_card.main(["--model-card", str(card_path), "--heatmap-quality", str(tmp_path / "heatmap.json")])
    assert refused.value.code == 2
    assert card_path.read_bytes() == before and not (tmp_path / "README.md").exists()


def test_the_shipped_readme_is_the_render_of_the_shipped_card():
    card = json.loads(DEFAULT_MODEL_CARD.read_text())
    assert (DEFAULT_MODEL_CARD.parent / "README.md").read_text() == model_card.render(card)


def test_a_malformed_or_missing_evaluation_is_refused_and_the_card_is_unchanged(tmp_path):
    card_path = tmp_path / DEFAULT_MODEL_CARD.name
    shutil.copy(DEFAULT_MODEL_CARD, card_path)
    before = card_path.read_bytes()
    for option in ("no description", f"zoomed={tmp_path / 'missing.json'}"):
        with pytest.raises(SystemExit) as refused:
            model_card.main(["--model-card", str(card_path), "--size-and-crop", option])
        assert refused.value.code == 2
    assert card_path.read_bytes() == before and not (tmp_path / "README.md").exists()


def test_validation_figures_are_rendered_with_their_intervals():
    card = json.loads(SINGLE_NETWORK_CARD.read_text())
    card["validation"]["balanced_accuracy"] = 0.7
    card["validation"]["confidence_intervals"] = {
        "level": 0.95, "resamples": 1000, "balanced_accuracy": [0.65, 0.75], "melanoma_recall": [0.6, 0.74],
        "auc_malignant": [0.875, 0.9125], "auc_melanoma": None}
    readme = model_card.render(card)
    assert "| balanced accuracy (mean per-class recall) | 0.700 (95% CI 0.650-0.750) | >= 0.75 |" in readme
    assert "(95% CI 0.875-0.912)" in readme and "1,000 resamples" in readme
    del card["validation"]["confidence_intervals"]
    assert "| balanced accuracy (mean per-class recall) | 0.700 | >= 0.75 |" in model_card.render(card)


def test_a_preprocessing_history_is_rendered_only_when_the_card_has_one():
    card = json.loads(SINGLE_NETWORK_CARD.read_text())
    without = {key: value for key, value in card.items() if key != "preprocessing_history"}
    assert "Preprocessing history" not in model_card.render(without)
    assert "- Preprocessing history: weights from 1.0; square changed in 1.1.\n" in model_card.render(
        {**without, "preprocessing_history": "weights from 1.0; square changed in 1.1."})


def test_sensitivity_at_fixed_specificity_is_rendered_when_the_card_has_it():
    card = json.loads(SINGLE_NETWORK_CARD.read_text())
    validation = {key: value for key, value in card["validation"].items() if key != "sensitivity_at_specificity"}
    assert "specificity" not in model_card.render({**card, "validation": validation})
    at_levels = {"malignant": {"0.80": 0.875, "0.90": 0.75, "0.95": None}}
    rendered = model_card.render({**card, "validation": {**validation, "sensitivity_at_specificity": at_levels}})
    assert "| sensitivity at 80% / 90% / 95% specificity, malignant | 0.875 / 0.750 / n/a | |" in rendered


def test_why_the_last_stage_ended_is_rendered_when_the_card_has_it():
    card = json.loads(SINGLE_NETWORK_CARD.read_text())
    assert "ended by" not in model_card.render(card)
    training = {**card["training"], "epochs_run": 12, "best_epoch": 9,
                "ended_by": "time budget: 25.2 of 26 minutes used, and an epoch takes about 2.1 minutes"}
    assert ("12 epochs in the last stage (ended by time budget: 25.2 of 26 minutes used, and an "
            "epoch takes about 2.1 minutes), best validation balanced accuracy at epoch 9."
            in model_card.render({**card, "training": training}))


def test_a_card_that_ships_its_last_epoch_says_so_beside_the_best_one():
    card = json.loads(SINGLE_NETWORK_CARD.read_text())
    training = {**card["training"], "epochs_run": 24, "best_epoch": 2, "shipped_epoch": 24,
                "shipped": "the last epoch", "ended_by": "epoch limit: 24 epochs run"}
    assert ("24 epochs in the last stage (ended by epoch limit: 24 epochs run), shipped epoch 24 "
            "(the last epoch; best validation balanced accuracy at epoch 2)."
            in model_card.render({**card, "training": training}))
