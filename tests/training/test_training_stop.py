"""When a training stage trains no further: epoch limit, early stopping, time budget (no
TensorFlow needed). The same rule decides before a --resume and after every epoch."""

import pytest

from dermalens.training import train


def state(completed=4, without_improvement=0, seconds=None):
    """A saved training state: `seconds` of epochs run so far (None: a state from before it was kept)."""
    saved = {"completed_epochs": completed, "best_balanced_accuracy": 0.5, "best_epoch": 1,
             "epochs_without_improvement": without_improvement}
    return saved if seconds is None else {**saved, "training_seconds": seconds}


def test_a_stage_within_every_limit_goes_on():
    assert train.why_training_ended(state(seconds=400), epochs=10, patience=3,
                                    time_budget_minutes=20) is None


def test_a_stage_ends_at_its_epoch_limit():
    assert train.why_training_ended(state(completed=10), 10, 3, None).startswith("epoch limit")


def test_a_stage_ends_when_validation_stops_improving_for_its_patience():
    assert train.why_training_ended(state(without_improvement=3), 10, 3, None).startswith("early stopping")
    assert train.why_training_ended(state(without_improvement=2), 10, 3, None) is None


@pytest.mark.parametrize("seconds, ends", [
    (4 * 60, False),      # 4 epochs of 1 min: the 5th ends at 5 min, inside a 5-minute budget
    (4 * 61, True),       # epochs of 61 s: the 5th would end at 5 min 5 s
    (6 * 60, True),       # already past the budget (e.g. resumed with a smaller one)
])
def test_a_stage_ends_before_an_epoch_expected_to_overrun_its_time_budget(seconds, ends):
    reason = train.why_training_ended(state(completed=4, seconds=seconds), 10, 3, 5)
    assert (reason is not None) == ends
    assert reason is None or reason.startswith("time budget")


@pytest.mark.parametrize("saved", [state(completed=0, seconds=0.0), state(seconds=None)])
def test_without_a_measured_epoch_the_time_budget_lets_training_go_on(saved):
    assert train.why_training_ended(saved, 10, 3, 0.001) is None


def test_more_epochs_patience_or_time_on_resume_continue_a_finished_stage():
    finished = state(completed=10, without_improvement=3, seconds=10 * 60)
    assert train.why_training_ended(finished, 10, 3, 11) is not None
    assert train.why_training_ended(finished, 12, 4, 12) is None


@pytest.mark.parametrize("budget", ["0", "-5", "nan"])
def test_time_budget_must_be_a_positive_number_of_minutes(budget, capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "d", "--out", "o", "--time-budget", budget])
    assert "--time-budget" in capsys.readouterr().err
