"""State engine: rolling microstructure metrics declared in ``machines/metrics.yaml``."""

from importlib import import_module

# Names resolved on first use (PEP 562), so importing a submodule, e.g. the ``metrics``
# command for ``execlab --help``, does not load the engine and its dependencies.
_EXPORTS = {
    "INVALIDATING_FEED_KINDS": "engine", "MultiSymbolMetrics": "engine", "SymbolMetrics": "engine",
    "KINDS": "spec", "MetricSet": "spec", "MetricSpec": "spec", "default_metrics_path": "spec",
    "load_metric_set": "spec", "metric_set": "spec", "parse_metric_set": "spec",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
