"""``python -m ditkit_metrics``: the ``ditkit-metrics`` command."""

from .cli import entrypoint

entrypoint()
