"""Paper execution: simulated orders against the live BBO, intents, and risk guardrails.

Public API (see docs/execution.md):

- ``ExecutionConfig``, ``RiskConfig``, ``IntentConfig`` (from the ``execution:``, ``risk:``,
  ``intents:`` sections of a session).
- ``PaperEngine(symbol, cfg, emit, seed)``: ``on_quote``, ``on_trade``, ``on_tick``, ``submit``,
  ``cancel``, ``cancel_all``, ``close``, ``summary`` and the position/PnL properties.
- ``Intent``, ``IntentGenerator``, ``PeriodicProbe``, ``FileIntents``, ``make_generator``.
- ``RiskGuard(cfg, machine, metrics)``: ``check``, ``update``, ``values``; the watched guards and
  the kill switch are the risk machine (``machines/risk.yaml``, ``spec/risk.py``).
"""

from .config import ExecutionConfig, IntentConfig, ProbeConfig, RiskConfig
from .engine import PaperEngine
from .intents import FileIntents, Intent, IntentGenerator, NoIntents, PeriodicProbe, make_generator
from .risk import RiskGuard

__all__ = [
    "ExecutionConfig", "IntentConfig", "ProbeConfig", "RiskConfig", "PaperEngine", "Intent",
    "IntentGenerator", "NoIntents", "PeriodicProbe", "FileIntents", "make_generator", "RiskGuard",
]
