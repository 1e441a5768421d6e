"""ditkit-interfaces: the thin contracts every ditkit package shares.

Configs that cross package lines, the ``ForwardPattern`` enum, block specs, protocols
(``Calibrator``, ``DecisionReducer``, ``Quantizer``, ``Metric``), errors, registries and
capability checks. Importing it imports no torch.

Example:
    >>> import ditkit_interfaces as di
    >>> di.DBCacheConfig(Fn_compute_blocks=1, residual_diff_threshold=0.12).strify()
    'DBCache_F1B0_W8I1M0MC0_R0.12'
    >>> di.ForwardPattern.Pattern_3.In
    ('hidden_states',)
"""

from .__about__ import __version__
from .blocks import BlockSpec, TransformerSpec
from .cache_configs import BasicCacheConfig, CacheType, DBCacheConfig, DBPruneConfig, cache_type
from .calibrator_configs import (
    CalibratorConfig,
    DMDCalibratorConfig,
    FoCaCalibratorConfig,
    TaylorSeerCalibratorConfig,
)
from .capabilities import COMPONENTS, Component, installed_components, is_installed, require
from .config import ConfigBase
from .errors import (
    AdapterError,
    CapabilityError,
    ConfigError,
    DitkitError,
    MissingComponentError,
    UnsupportedModelError,
)
from .parallel_config import ParallelismBackend, ParallelismConfig
from .patterns import ForwardPattern
from .protocols import (
    Calibrator,
    CalibratorFactory,
    DecisionReducer,
    LocalDecisionReducer,
    Metric,
    Quantizer,
)
from .quantize_config import QuantizeBackend, QuantizeConfig
from .registry import NameRegistry, TypeRegistry

__all__ = [
    "COMPONENTS",
    "AdapterError",
    "BasicCacheConfig",
    "BlockSpec",
    "CacheType",
    "Calibrator",
    "CalibratorConfig",
    "CalibratorFactory",
    "CapabilityError",
    "Component",
    "ConfigBase",
    "ConfigError",
    "DBCacheConfig",
    "DBPruneConfig",
    "DMDCalibratorConfig",
    "DecisionReducer",
    "DitkitError",
    "FoCaCalibratorConfig",
    "ForwardPattern",
    "LocalDecisionReducer",
    "Metric",
    "MissingComponentError",
    "NameRegistry",
    "ParallelismBackend",
    "ParallelismConfig",
    "QuantizeBackend",
    "QuantizeConfig",
    "Quantizer",
    "TaylorSeerCalibratorConfig",
    "TransformerSpec",
    "TypeRegistry",
    "UnsupportedModelError",
    "__version__",
    "cache_type",
    "installed_components",
    "is_installed",
    "require",
]
