"""Small helpers shared by tests (the repository root, reading a run's log)."""

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def read_records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "log.jsonl").read_text().splitlines()]
