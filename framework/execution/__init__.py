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

from importlib import import_module

# Loaded on first use (PEP 562): the area's commands (exchange-info, latency) are registered
# for every `execlab` call, and `--help` must not pay for the engine and the schemas.
_HOME = {
    "ExecutionConfig": "config", "IntentConfig": "config", "ProbeConfig": "config", "RiskConfig": "config",
    "PaperEngine": "engine", "RiskGuard": "risk",
    "FileIntents": "intents", "Intent": "intents", "IntentGenerator": "intents", "NoIntents": "intents",
    "PeriodicProbe": "intents", "make_generator": "generators",
}
__all__ = list(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_HOME[name]}", __name__), name)
