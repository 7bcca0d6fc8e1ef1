"""Random fields for coefficients and data (numpy only); each sampler is a function of (seed, index)."""

from .grf import gaussian_random_field, gaussian_random_field_at, two_phase, log_normal, spectrum, pointwise_variance
from .inclusions import inclusion_disks, inclusions_at, boundary_patterns
from .params import check_params
from .sweeps import rotating_log_normal
from .specs import field_from_spec, field_params, make_field, FIELDS, FIELD_DEFAULTS

__all__ = ["gaussian_random_field", "gaussian_random_field_at", "two_phase", "log_normal", "spectrum",
           "pointwise_variance", "inclusion_disks", "inclusions_at", "boundary_patterns", "check_params",
           "field_from_spec", "field_params", "make_field", "FIELDS", "FIELD_DEFAULTS", "rotating_log_normal"]
