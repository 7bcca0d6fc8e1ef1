"""Gaussian random fields: statistics against the exact covariance, determinism, resolution consistency."""

import numpy as np
import pytest

from solvers.sampling import (field_from_spec, gaussian_random_field, gaussian_random_field_at, log_normal,
                              pointwise_variance, two_phase)


def test_same_sample_at_every_resolution():
    for index in range(3):
        u32 = gaussian_random_field(32, seed=7, index=index)
        u128 = gaussian_random_field(128, seed=7, index=index)
        np.testing.assert_allclose(u32, u128[::4, ::4], atol=1e-12)


def test_grid_and_pointwise_evaluation_agree():
    u = gaussian_random_field(16, seed=3, index=2)
    X, Y = np.meshgrid(np.linspace(0, 1, 17), np.linspace(0, 1, 17))
    v = gaussian_random_field_at(np.vstack([X.ravel(), Y.ravel()]), seed=3, index=2).reshape(17, 17)
    np.testing.assert_allclose(u, v, atol=1e-12)


def test_function_of_seed_and_index_only():
    a = gaussian_random_field(8, seed=1, index=5)
    assert np.array_equal(a, gaussian_random_field(8, seed=1, index=5))
    assert not np.allclose(a, gaussian_random_field(8, seed=1, index=6))
    assert not np.allclose(a, gaussian_random_field(8, seed=2, index=5))
    with pytest.raises(ValueError, match="non-negative"):
        gaussian_random_field(8, seed=-1)


def test_mean_and_variance_match_the_covariance():
    N = 3000
    pts = np.array([[0.5, 0.25, 0.0, 0.8], [0.5, 0.75, 0.0, 0.1]])
    samples = np.array([gaussian_random_field_at(pts, seed=11, index=i) for i in range(N)])
    var = pointwise_variance(pts)
    se_mean = np.sqrt(var / N)
    assert np.all(np.abs(samples.mean(axis=0)) < 4 * se_mean)
    # variance of a sample variance of Gaussians: 2 sigma^4 / (N - 1)
    assert np.all(np.abs(samples.var(axis=0, ddof=1) - var) < 4 * np.sqrt(2 / (N - 1)) * var)


def test_two_phase_fraction_and_values():
    a = np.array([two_phase(32, seed=0, index=i) for i in range(400)])
    assert set(np.unique(a)) == {3.0, 12.0}
    frac = (a == 12.0).mean()
    assert frac == pytest.approx(0.5, abs=0.03)  # zero-mean symmetric field thresholded at 0


def test_log_normal_positive_with_median_one():
    a = np.array([log_normal(16, seed=4, index=i) for i in range(400)])
    assert a.min() > 0
    assert np.median(a) == pytest.approx(1.0, abs=0.05)


def test_field_specs():
    assert field_from_spec("3.5") == 3.5
    a = field_from_spec("contrast:seed=1,index=2")
    vals = a(np.array([[0.1, 0.3, 0.9], [0.2, 0.8, 0.5]]))
    assert set(vals.tolist()) <= {1.0, 1e4}
    with pytest.raises(ValueError, match="unknown field"):
        field_from_spec("gaussian")
    with pytest.raises(ValueError, match="key=value"):
        field_from_spec("two-phase:seed")
