"""How training answers the class imbalance: sampling probabilities and loss weights (no
TensorFlow needed)."""

import numpy as np
import pytest

from dermalens.training import train


@pytest.mark.parametrize("balanced_sampling", [0.0, 0.5, 1.0])
def test_every_class_gets_the_same_expected_share_of_the_loss(balanced_sampling):
    labels = np.repeat(np.arange(7), [30, 50, 110, 12, 110, 670, 14])
    probabilities, weights = train.sampling_and_loss_weights(labels, balanced_sampling)
    assert probabilities.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(probabilities * weights, np.full(7, 1 / 7), rtol=1e-6)


def test_balanced_sampling_interpolates_between_weighting_and_resampling():
    labels = np.repeat(np.arange(7), [30, 50, 110, 12, 110, 670, 14])
    natural, inverse_frequency = train.sampling_and_loss_weights(labels, 0.0)
    np.testing.assert_allclose(natural, np.bincount(labels) / len(labels))
    np.testing.assert_allclose(inverse_frequency, train.class_weights(labels), rtol=1e-6)
    uniform, unweighted = train.sampling_and_loss_weights(labels, 1.0)
    np.testing.assert_allclose(uniform, np.full(7, 1 / 7))
    np.testing.assert_allclose(unweighted, np.ones(7), rtol=1e-6)
    halfway, _ = train.sampling_and_loss_weights(labels, 0.5)
    np.testing.assert_allclose(halfway, np.sqrt(np.bincount(labels)) / np.sqrt(np.bincount(labels)).sum())


def test_a_class_without_training_images_is_never_drawn():
    probabilities, weights = train.sampling_and_loss_weights(np.array([0, 0, 5, 5, 5]), 0.5)
    assert probabilities[[1, 2, 3, 4, 6]].sum() == 0 and weights[[1, 2, 3, 4, 6]].sum() == 0


@pytest.mark.parametrize("option", [["--balanced-sampling", "-0.1"], ["--balanced-sampling", "1.5"],
                                    ["--ema-momentum", "-0.5"], ["--ema-momentum", "1"],
                                    ["--colour-shift", "-0.1"], ["--colour-shift", "0.6"],
                                    ["--colour-shift", "nan"]])
def test_out_of_range_balancing_averaging_or_colour_shift_is_refused(option):
    with pytest.raises(SystemExit) as refused:
        train.parse_args(["--data", "d", "--out", "o", *option])
    assert refused.value.code == 2


def test_teacher_targets_are_brought_to_the_class_balanced_question_the_loss_weights_ask():
    labels = np.array([0] * 9 + [1])            # class 0 is nine times as common
    natural = np.array([[0.9, 0.1], [0.5, 0.5]])
    padded = np.pad(natural, ((0, 0), (0, 5)))
    balanced = train.class_balanced(padded, labels)
    np.testing.assert_allclose(balanced[:, :2], [[0.5, 0.5], [0.1, 0.9]], atol=1e-6)
    np.testing.assert_allclose(balanced.sum(axis=1), 1.0, atol=1e-6)


def test_a_natural_teacher_prior_keeps_the_teacher_probabilities_as_they_are():
    labels = np.array([0] * 9 + [1])
    on_views = np.pad(np.array([[[0.9, 0.1]], [[0.5, 0.5]]]), ((0, 0), (0, 0), (0, 5)))
    targets = train.teacher_targets(on_views, labels[:2], 1.0, "same", prior="natural")
    np.testing.assert_allclose(targets, on_views.reshape(2, 7), atol=1e-6)
    balanced = train.teacher_targets(on_views, labels[:2], 1.0, "same")
    assert not np.allclose(balanced, targets)


@pytest.mark.parametrize("view", ["same", "clean"])
def test_each_view_is_trained_towards_the_teacher_on_that_view_or_on_the_image_itself(view):
    labels = np.array([0, 1])
    on_views = np.zeros((2, 3, 7))
    on_views[:, :, 2] = 1.0                        # the teacher calls every re-rendered view class 2
    on_views[:, 0] = np.eye(7)[labels]             # and the image itself its true class
    targets = train.teacher_targets(on_views, labels, 0.5, view).reshape(2, 3, 7)
    np.testing.assert_allclose(targets.sum(axis=2), 1.0, atol=1e-6)
    np.testing.assert_allclose(targets[:, 0], np.eye(7)[labels], atol=1e-6)
    expected_view_2 = np.eye(7)[labels] if view == "clean" else 0.5 * np.eye(7)[labels] + 0.5 * np.eye(7)[[2, 2]]
    np.testing.assert_allclose(targets[:, 2], expected_view_2, atol=1e-6)
