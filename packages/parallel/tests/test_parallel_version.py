"""ditkit-parallel is in lockstep with ditkit-interfaces (isolation: tests-integration)."""

import importlib.metadata

import ditkit_interfaces
import ditkit_parallel


def test_version_is_lockstep():
    assert ditkit_parallel.__version__ == ditkit_interfaces.__version__
    assert importlib.metadata.version("ditkit-parallel") == ditkit_parallel.__version__
