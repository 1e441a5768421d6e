"""ditkit-cache is in lockstep with ditkit-interfaces (isolation: tests-integration)."""

import importlib.metadata

import ditkit_cache
import ditkit_interfaces


def test_version_is_lockstep():
    assert ditkit_cache.__version__ == ditkit_interfaces.__version__
    assert importlib.metadata.version("ditkit-cache") == ditkit_cache.__version__
