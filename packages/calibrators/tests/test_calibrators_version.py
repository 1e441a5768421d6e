"""ditkit-calibrators is in lockstep with ditkit-interfaces (isolation: tests-integration)."""

import importlib.metadata

import ditkit_calibrators
import ditkit_interfaces


def test_version_is_lockstep():
    assert ditkit_calibrators.__version__ == ditkit_interfaces.__version__
    assert importlib.metadata.version("ditkit-calibrators") == ditkit_calibrators.__version__
