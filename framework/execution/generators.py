"""The intent generator a session's ``intents:`` section asks for.

Apart from ``intents.py`` because a ``python`` generator wraps a user strategy
(``strategy.py``), which itself builds ``Intent``s: choosing here keeps the import one way.
"""

from __future__ import annotations

from pathlib import Path

from .config import IntentConfig
from .intents import FileIntents, IntentGenerator, NoIntents, PeriodicProbe


def make_generator(cfg: IntentConfig | None, seed: int | str = 0, import_root: Path | None = None) -> IntentGenerator:
    """The generator an ``intents:`` section asks for. ``import_root``: where a ``python``
    generator's module is looked for first (the config's workspace)."""
    cfg = cfg or IntentConfig()
    if cfg.generator == "none":
        return NoIntents()
    if cfg.generator == "python":
        from .strategy import PythonIntents, load_strategy  # user code: only when asked for

        return PythonIntents(load_strategy(cfg.class_path, cfg.params, import_root))
    if cfg.generator == "file":
        return FileIntents(cfg.file_path)
    return PeriodicProbe(cfg.probe, seed)
