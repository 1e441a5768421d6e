"""ditkit-offload is in lockstep with ditkit-interfaces (isolation: tests-integration)."""

import importlib.metadata

import ditkit_interfaces
import ditkit_offload


def test_version_is_lockstep():
    assert ditkit_offload.__version__ == ditkit_interfaces.__version__
    assert importlib.metadata.version("ditkit-offload") == ditkit_offload.__version__
