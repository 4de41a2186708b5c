"""User-facing spec errors: always ``path:LINE:COL: what is wrong; what was expected``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpecError:
    path: str
    line: int  # 1-based; 0 when unknown
    col: int  # 1-based; 0 when unknown
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


class SpecErrors(Exception):
    """All the errors found in one validation run (never just the first)."""

    def __init__(self, errors: list[SpecError]):
        self.errors = sorted(errors, key=lambda e: (e.path, e.line, e.col, e.message))
        super().__init__("\n".join(str(e) for e in self.errors))
