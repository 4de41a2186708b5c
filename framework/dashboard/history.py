"""A finished run's board at any moment: what the time slider asks for.

The board at time T is the board after the longest prefix of the log whose records are all at
or before T. (A few engine records are logged with a time slightly earlier than the record
before them; using the running maximum of ``ts_ns`` keeps the prefix growing with T.)
Moving forward applies only the new records; moving back restarts from the nearest
checkpoint, a copy of the board taken every ``CHECKPOINT_EVERY`` records.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Sequence
from typing import Any

from .board import Board

CHECKPOINT_EVERY = 20_000


class History:
    def __init__(self, records: Sequence[dict[str, Any]], charted: list[str]):
        self.records = records
        self.charted = charted
        self.reach: list[int] = []  # running maximum of ts_ns, one per record
        top = None
        for r in records:
            ts = r.get("ts_ns")
            if isinstance(ts, int) and (top is None or ts > top):
                top = ts
            self.reach.append(top if top is not None else 0)
        self.start_ns = self.reach[0] if self.reach else 0
        self.end_ns = self.reach[-1] if self.reach else 0
        self._checkpoints: dict[int, Board] = {0: Board(charted)}
        self._board = Board(charted)
        self._applied = 0

    def marks(self) -> list[int]:
        """The times of every transition (ticks on the slider)."""
        return [r["ts_ns"] for r in self.records if r.get("kind") == "transition" and isinstance(r.get("ts_ns"), int)]

    def prefix(self, at_ns: int) -> int:
        return bisect.bisect_right(self.reach, at_ns)

    def board_at(self, at_ns: int) -> Board:
        k = self.prefix(at_ns)
        if k < self._applied:
            base = max(n for n in self._checkpoints if n <= k)
            self._board, self._applied = copy.deepcopy(self._checkpoints[base]), base
        for i in range(self._applied, k):
            self._board.apply(self.records[i])
            if (i + 1) % CHECKPOINT_EVERY == 0 and (i + 1) not in self._checkpoints:
                self._checkpoints[i + 1] = copy.deepcopy(self._board)
        self._applied = k
        return self._board

    def snapshot_at(self, at_ns: int) -> dict[str, Any]:
        snap = self.board_at(at_ns).snapshot()
        snap["at_ns"] = at_ns
        return snap
