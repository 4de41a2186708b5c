"""State engine: rolling microstructure metrics declared in ``machines/metrics.yaml``."""

from .engine import INVALIDATING_FEED_KINDS, MultiSymbolMetrics, SymbolMetrics
from .spec import (
                   KINDS,
                   MetricSet,
                   MetricSpec,
                   default_metrics_path,
                   load_metric_set,
                   metric_set,
                   parse_metric_set,
)

__all__ = ["INVALIDATING_FEED_KINDS", "KINDS", "MetricSet", "MetricSpec", "MultiSymbolMetrics",
           "SymbolMetrics", "default_metrics_path", "load_metric_set", "metric_set",
           "parse_metric_set"]
