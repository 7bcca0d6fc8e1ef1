"""Random fields for coefficients and data (numpy only); each sampler is a function of (seed, index)."""

from .grf import gaussian_random_field, gaussian_random_field_at, two_phase, log_normal, spectrum, pointwise_variance
from .specs import field_from_spec, FIELDS

__all__ = ["gaussian_random_field", "gaussian_random_field_at", "two_phase", "log_normal", "spectrum",
           "pointwise_variance", "field_from_spec", "FIELDS"]
