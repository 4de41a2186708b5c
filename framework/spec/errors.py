"""User-facing spec errors: always ``path:LINE:COL: what is wrong; what was expected``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpecError:
    path: str
    line: int  # 1-based; 0 when unknown
    col: int  # 1-based; 0 when unknown
    message: str
    # True for an error that only follows from another one (a machine not checked because a
    # machine it reads is broken): listed after the root causes.
    consequence: bool = False

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


def sort_key(e: SpecError) -> tuple:
    """Root causes first, then consequences; each group by file and position."""
    return (e.consequence, e.path, e.line, e.col, e.message)


class SpecErrors(Exception):
    """All the errors found in one validation run (never just the first)."""

    def __init__(self, errors: list[SpecError]):
        self.errors = sorted(errors, key=sort_key)
        super().__init__("\n".join(str(e) for e in self.errors))
