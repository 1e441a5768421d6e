"""ditkit-svdquant is in lockstep with ditkit-interfaces (isolation: tests-integration)."""

import importlib.metadata

import ditkit_interfaces
import ditkit_svdquant


def test_version_is_lockstep():
    assert ditkit_svdquant.__version__ == ditkit_interfaces.__version__
    assert importlib.metadata.version("ditkit-svdquant") == ditkit_svdquant.__version__
