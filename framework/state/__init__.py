"""State engine: rolling microstructure metrics declared in ``machines/metrics.yaml`` (the
declaration itself is read by ``framework.spec.metrics``)."""

from importlib import import_module

# Names resolved on first use (PEP 562), so importing a submodule, e.g. the ``metrics``
# command for ``execlab --help``, does not load the engine and its dependencies.
_EXPORTS = {
    "INVALIDATING_FEED_KINDS": "engine", "MultiSymbolMetrics": "engine", "SymbolMetrics": "engine",
    "KernelMetrics": "kernel", "live_metrics": "kernel",
    "KINDS": "framework.spec.metrics", "MetricSet": "framework.spec.metrics", "MetricSpec": "framework.spec.metrics", "default_metrics_path": "framework.spec.metrics",
    "load_metric_set": "framework.spec.metrics", "metric_set": "framework.spec.metrics", "parse_metric_set": "framework.spec.metrics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _EXPORTS[name]
    return getattr(import_module(module if module.startswith("framework.") else f".{module}", __name__), name)
