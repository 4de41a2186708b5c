"""Small builders shared by the execution tests."""

from __future__ import annotations

from framework.execution import ExecutionConfig, Intent, PaperEngine
from framework.market.events import Quote, Trade

SYM = "BTCUSDT"
MS = 1_000_000
S = 1_000_000_000


def cfg(**sections) -> ExecutionConfig:
    """An execution config with fixed latency (no jitter) unless a test sets one. Exchange rules
    are off unless a test turns them on: these tests price toy markets (BTCUSDT at 100) where
    Binance's minimum notional would refuse the orders; tests/execution/test_filters.py covers them."""
    d = {"latency": {"fixed_ms": 10, "jitter": "none", "ack_fixed_ms": 10}, "exchange_rules": {"enabled": False}}
    for k, v in sections.items():
        if isinstance(v, dict) and isinstance(d.get(k), dict):
            d[k] = {**d[k], **v}
        else:
            d[k] = v
    return ExecutionConfig.from_dict(d)


def engine(seed: int = 7, **sections) -> tuple[PaperEngine, list[dict]]:
    recs: list[dict] = []
    return PaperEngine(SYM, cfg(**sections), recs.append, seed), recs


def quote(ts: int, bid: float, bid_qty: float, ask: float, ask_qty: float) -> Quote:
    return Quote(ts_ns=ts, symbol=SYM, bid=bid, bid_qty=bid_qty, ask=ask, ask_qty=ask_qty, update_id=ts)


def trade(ts: int, price: float, qty: float, aggressor: str) -> Trade:
    """aggressor 'sell' hits bids (buyer is maker); 'buy' lifts asks."""
    return Trade(ts_ns=ts, symbol=SYM, price=price, qty=qty, buyer_is_maker=(aggressor == "sell"),
                 trade_id=ts, trade_time_ms=ts // MS, event_time_ms=ts // MS)


def intent(side: str, notional: float, style: str = "take", **kw) -> Intent:
    return Intent(ts_ns=0, symbol=SYM, side=side, notional_usd=notional, style=style, **kw)


def kinds(recs: list[dict], kind: str) -> list[dict]:
    return [r for r in recs if r.get("kind") == kind]
