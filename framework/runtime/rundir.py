"""The run directory: everything needed to explain, verify and re-run a session.

RUN/log.jsonl[.gz]   the audit log (docs/audit-log.md)
RUN/summary.json     the summary (with wall-clock figures, which the log never holds)
RUN/config.yaml      the config as written
RUN/specs/*.yaml     the spec files the run used
RUN/session.json     config hash, --set overrides, config path, the input's identity
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..spec.errors import SpecError, SpecErrors
from ..spec.session import Session, load_session


def write_snapshot(session: Session, out_dir: Path, identity: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(session.snapshot["config"], encoding="utf-8")
    specs = out_dir / "specs"
    specs.mkdir(exist_ok=True)
    for key, text in session.snapshot["specs"].items():
        (specs / f"{key}.yaml").write_text(text, encoding="utf-8")
    meta = {"config_hash": session.config_hash, "config_path": session.path, "session": session.name,
            "sets": session.snapshot["sets"], "source": identity,
            # the specs' order decides which machine comes first among equals in the pipeline
            "specs": list(session.snapshot["specs"])}
    (out_dir / "session.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_meta(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "session.json"
    if not path.is_file():
        raise SpecErrors([SpecError(str(run_dir), 0, 0, "not a run directory (no session.json); expected the folder `execlab run` wrote")])
    return json.loads(path.read_text(encoding="utf-8"))


def session_from_run(run_dir: Path, sets: Iterable[str] = (), config_path: str | Path | None = None) -> Session:
    """The run's session re-created from its snapshot (plus overrides), or an edited config."""
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    if config_path is not None:
        return load_session(config_path, [*meta["sets"], *sets])
    spec_files = {key: str(run_dir / "specs" / f"{key}.yaml") for key in meta["specs"]}
    return load_session(meta["config_path"], [*meta["sets"], *sets],
                        text=(run_dir / "config.yaml").read_text(encoding="utf-8"), spec_files=spec_files)


def recorded_input(run_dir: Path) -> list[str] | None:
    """The recordings a run replayed (None for a scenario, which its config regenerates)."""
    source = read_meta(Path(run_dir))["source"]
    if source.get("kind") in ("replay", "live"):
        return [f["path"] for f in source["files"]]
    return None


def log_path(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    for name in ("log.jsonl", "log.jsonl.gz"):
        if (run_dir / name).is_file():
            return run_dir / name
    raise SpecErrors([SpecError(str(run_dir), 0, 0, "no audit log (log.jsonl) here; expected a run directory")])


def read_log(run_dir: Path) -> Iterator[dict[str, Any]]:
    """The audit records of a run, in order; stops quietly at a torn last line (a killed run)."""
    path = log_path(run_dir)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        try:
            for line in f:
                if not line.endswith(b"\n"):
                    return
                yield json.loads(line)
        except EOFError:
            return
