"""A small, hand-written run directory with a known story, for checks that need exact answers.

Story (BTCUSDT, t in seconds after T0):
  0   start: regime UNSTABLE, permission BLOCKED, health RED; decision not_permitted
  2   regime UNSTABLE -> NORMAL (rule 4), permission BLOCKED -> COOLDOWN (rule 2)
  3   health RED -> GREEN
  32  permission COOLDOWN -> PROBATION (rule 4, after 30 s)
  40  regime NORMAL -> UNSTABLE (rule 1, spread 7.5 bps >= 5.0)
  40  permission PROBATION -> BLOCKED (rule 1)
  41  intent i-2 refused: rule not_permitted
  45  regime UNSTABLE -> NORMAL, permission BLOCKED -> COOLDOWN
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
T0 = 1_723_118_400_000_000_000  # 2024-08-08T12:00:00Z
S = 1_000_000_000

PERM_GUARD_1 = "when regime.state == 'UNSTABLE' or risk.kill_switch or risk.stale"


def _dump(rec: dict) -> bytes:
    return (json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n").encode()


def records() -> list[dict]:
    sym = "BTCUSDT"
    states0 = {"regime": "UNSTABLE", "permission": "BLOCKED", "health": "RED"}
    blocked = {"eligible": False, "aggressiveness": "none", "risk_budget": 0.0, "rule": "not_permitted"}
    recs: list[dict] = [{
        "ts_ns": T0, "symbol": "", "kind": "session_start", "log_version": 1, "session": "handmade",
        "config_hash": "0" * 64, "symbols": [sym],
        "source": {"kind": "replay", "path": "x.frames.gz", "sha256": "1" * 64, "format": "frames"},
        "initial": {sym: dict(states0)}, "decision": {sym: dict(blocked)},
    }]

    def tr(t, machine, frm, to, rule, guard, inputs, params):
        recs.append({"ts_ns": T0 + int(t * S), "symbol": sym, "kind": "transition", "machine": machine,
                     "from": frm, "to": to, "rule": rule, "guard": guard, "inputs": inputs, "params": params})

    def dec(t, rule, eligible, aggr, budget, states):
        recs.append({"ts_ns": T0 + int(t * S), "symbol": sym, "kind": "decision", "eligible": eligible,
                     "aggressiveness": aggr, "risk_budget": budget, "rule": rule, "states": dict(states)})

    mid = 61800.0
    for t in range(0, 60):
        recs.append({"ts_ns": T0 + t * S, "symbol": sym, "kind": "metrics",
                     "values": {"mid": mid + t * 0.5, "spread_bps": 7.5 if t == 40 else 0.01}})
    tr(2, "regime", "UNSTABLE", "NORMAL", 4, "when metrics.spread_bps < params.unstable_spread_bps * params.exit_ratio; for params.unstable_exit_s",
       {"metrics.spread_bps": 0.01, "held_s": 5.0}, {"unstable_spread_bps": 5.0, "exit_ratio": 0.7, "unstable_exit_s": 5.0})
    tr(2, "permission", "BLOCKED", "COOLDOWN", 2, "when regime.state != 'UNSTABLE' and not risk.kill_switch and not risk.stale",
       {"regime.state": "NORMAL", "risk.kill_switch": False, "risk.stale": False}, {})
    tr(3, "health", "RED", "GREEN", 3, "when score >= params.green_min_score; for params.recover_s",
       {"score": 0.95, "held_s": 3.0}, {"green_min_score": 0.8, "recover_s": 3.0})
    tr(32, "permission", "COOLDOWN", "PROBATION", 4, "after min(params.cooldown_s * 2 ** max(entries('BLOCKED', params.escalation_window_s) - 1, 0), params.cooldown_max_s)",
       {"time_in_state_s": 30.0, "after_s": 30.0}, {"cooldown_s": 30, "escalation_window_s": 1800, "cooldown_max_s": 600})
    dec(32, "probation", True, "passive", 0.25, {"regime": "NORMAL", "permission": "PROBATION", "health": "GREEN"})
    recs.append({"ts_ns": T0 + 35 * S, "symbol": sym, "kind": "intent", "intent_id": "i-1", "side": "buy",
                 "notional_usd": 100.0, "style": "passive",
                 "states": {"regime": "NORMAL", "permission": "PROBATION", "health": "GREEN"},
                 "decision": {"eligible": True, "aggressiveness": "passive", "risk_budget": 0.25, "rule": "probation"}})
    labels = {"regime": "NORMAL", "permission": "PROBATION", "health": "GREEN"}
    recs.append({"ts_ns": T0 + 35 * S, "symbol": sym, "kind": "order", "order_id": "BTCUSDT-1", "intent_id": "i-1",
                 "side": "buy", "qty": 0.0016, "notional_usd": 100.0, "style": "passive", "limit_price": 61817.0,
                 "labels": labels})
    recs.append({"ts_ns": T0 + 35 * S + 5_000_000, "symbol": sym, "kind": "ack", "order_id": "BTCUSDT-1", "latency_ms": 5.0})
    recs.append({"ts_ns": T0 + 37 * S, "symbol": sym, "kind": "fill", "order_id": "BTCUSDT-1", "side": "buy",
                 "price": 61817.0, "qty": 0.0016, "how": "queue_consumed", "liquidity": "maker"})
    tr(40, "regime", "NORMAL", "UNSTABLE", 1, "when metrics.spread_bps >= params.unstable_spread_bps",
       {"metrics.spread_bps": 7.5}, {"unstable_spread_bps": 5.0})
    tr(40, "permission", "PROBATION", "BLOCKED", 1, PERM_GUARD_1,
       {"regime.state": "UNSTABLE", "risk.kill_switch": False, "risk.stale": False}, {})
    dec(40, "not_permitted", False, "none", 0.0, {"regime": "UNSTABLE", "permission": "BLOCKED", "health": "GREEN"})
    recs.append({"ts_ns": T0 + 40 * S, "symbol": sym, "kind": "alert", "guard": "stale_data", "tripped": True,
                 "value": 2500, "limit": 2000})
    recs.append({"ts_ns": T0 + 41 * S, "symbol": sym, "kind": "reject", "intent_id": "i-2", "stage": "decision",
                 "rule": "not_permitted", "reason": "permission is BLOCKED",
                 "side": "sell", "notional_usd": 100.0, "style": "take",
                 "states": {"regime": "UNSTABLE", "permission": "BLOCKED", "health": "GREEN"},
                 "decision": {"eligible": False, "aggressiveness": "none", "risk_budget": 0.0, "rule": "not_permitted"}})
    recs.append({"ts_ns": T0 + 42 * S, "symbol": sym, "kind": "feed", "event": "gap", "detail": "no quotes", "gap_ms": 3000})
    recs.append({"ts_ns": T0 + 44 * S, "symbol": sym, "kind": "order_result", "order_id": "BTCUSDT-1", "status": "filled",
                 "labels": labels, "qty": 0.0016, "filled_qty": 0.0016, "fill_ratio": 1.0, "avg_fill_price": 61817.0,
                 "slippage_arrival_bps": -0.5, "slippage_decision_bps": -0.4, "latency_ms": 5.0,
                 "markout_bps": {"1s": 0.2, "5s": -0.3}})
    tr(45, "regime", "UNSTABLE", "NORMAL", 4, "when metrics.spread_bps < params.unstable_spread_bps * params.exit_ratio; for params.unstable_exit_s",
       {"metrics.spread_bps": 0.01, "held_s": 5.0}, {"unstable_spread_bps": 5.0, "exit_ratio": 0.7, "unstable_exit_s": 5.0})
    tr(45, "permission", "BLOCKED", "COOLDOWN", 2, "when regime.state != 'UNSTABLE' and not risk.kill_switch and not risk.stale",
       {"regime.state": "NORMAL", "risk.kill_switch": False, "risk.stale": False}, {})
    recs.sort(key=lambda r: r["ts_ns"])  # stable: keeps the written order at equal times
    return recs


def make_run(run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    recs = records()
    digest = hashlib.sha256()
    lines = []
    for i, r in enumerate(recs):
        r["seq"] = i
        b = _dump(r)
        lines.append(b)
        digest.update(b)
    end = {"ts_ns": T0 + 60 * S, "symbol": "", "kind": "session_end", "events": len(recs),
           "digest": digest.hexdigest(), "summary": {}, "seq": len(recs)}
    lines.append(_dump(end))
    (run_dir / "log.jsonl").write_bytes(b"".join(lines))
    specs = run_dir / "specs"
    specs.mkdir(exist_ok=True)
    for name in ("metrics", "regime", "permission", "health", "decision"):
        shutil.copy(REPO / "machines" / f"{name}.yaml", specs / f"{name}.yaml")
    (run_dir / "summary.json").write_text("{}\n")
    return run_dir
