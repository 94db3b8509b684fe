"""Tests for phaselib.probes.fit_linear_probe."""

import pytest
import torch

from phaselib.probes import fit_linear_probe


def test_linearly_separable_labels_are_decoded():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(3, (301,), generator=g)
    X = torch.randn(301, 9, generator=g) + 4.0 * torch.nn.functional.one_hot(y, 9).float()
    assert fit_linear_probe(X, y) > 0.95


def test_random_labels_give_chance_accuracy():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(1001, 7, generator=g)
    y = torch.randint(2, (1001,), generator=g)
    assert 0.35 < fit_linear_probe(X, y) < 0.65


def test_returns_test_and_train_accuracy_over_a_30_70_split():
    g = torch.Generator().manual_seed(2)
    X, y = torch.randn(97, 5, generator=g), torch.randint(2, (97,), generator=g)
    # round(97 * 0.3) = 29 test examples and 68 train examples: the accuracies are counts.
    te, tr = fit_linear_probe(X, y, return_train=True)
    assert te * 29 == pytest.approx(round(te * 29)) and tr * 68 == pytest.approx(round(tr * 68))
    assert fit_linear_probe(X, y) == te
    # Labels set by the sign of feature 0, with a margin of 3: both splits are perfect.
    X[:, 0] += 3 * (2 * y - 1)
    assert fit_linear_probe(X, y, return_train=True) == (1.0, 1.0)


def test_constant_feature_does_not_break_it():
    g = torch.Generator().manual_seed(3)
    y = torch.randint(2, (80,), generator=g)
    X = torch.stack([y.float() * 2 - 1, torch.ones(80)], 1)
    assert fit_linear_probe(X, y) == 1.0


def test_bad_inputs_name_the_argument():
    X = torch.randn(10, 3)
    with pytest.raises(ValueError, match="features"):
        fit_linear_probe(torch.randn(10), torch.zeros(10, dtype=torch.long))
    with pytest.raises(TypeError, match="labels"):
        fit_linear_probe(X, torch.zeros(10))
    with pytest.raises(ValueError, match="labels"):
        fit_linear_probe(X, torch.zeros(9, dtype=torch.long))
    with pytest.raises(ValueError, match="test_frac"):
        fit_linear_probe(X, torch.zeros(10, dtype=torch.long), test_frac=1.5)


def test_logistic_probe_reads_a_planted_label_and_not_a_random_one():
    from phaselib.probes import fit_logistic_probe

    g = torch.Generator().manual_seed(0)
    labels = torch.randint(3, (600,), generator=g)
    noise = torch.randn(600, 8, generator=g)
    planted = noise.clone()
    planted[:, 0] += 4.0 * labels      # the label, linearly, in one feature
    te, tr = fit_logistic_probe(planted, labels)
    assert te > 0.9 and tr > 0.9
    te, tr = fit_logistic_probe(noise, labels)
    assert te < 0.5                    # chance is 1/3
    assert tr > te                     # the ceiling on training rows is above it
    with pytest.raises(TypeError, match="labels must be a long tensor"):
        fit_logistic_probe(noise, labels[:5])
    with pytest.raises(ValueError, match="iters"):
        fit_logistic_probe(noise, labels, iters=0)
