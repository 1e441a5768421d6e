"""ditkit-metrics is in lockstep with ditkit-interfaces (isolation: tests-integration)."""

import importlib.metadata

import ditkit_interfaces
import ditkit_metrics


def test_version_is_lockstep():
    assert ditkit_metrics.__version__ == ditkit_interfaces.__version__
    assert importlib.metadata.version("ditkit-metrics") == ditkit_metrics.__version__
