"""Typed, immutable market events: the only things that flow into the pipeline.

Every event carries ``ts_ns``: its event time in integer nanoseconds since the epoch. For
market frames this is the local receive time (spot ``bookTicker`` carries no exchange time,
so the receive stamp is the one clock every stream shares). Replay keeps the recorded stamp.

Prices and sizes are floats. Binance quotes them with at most 8 decimals and well under 15
significant digits, so a float's shortest ``repr`` reproduces the exchange's decimal text
exactly: logs and fills that format with ``repr`` keep the exact value.
"""

from __future__ import annotations

import msgspec


class Trade(msgspec.Struct, frozen=True, gc=False):
    """One trade print (``@trade``) or aggregated trade (``@aggTrade``)."""

    ts_ns: int  # local receive time
    symbol: str  # upper case, e.g. "BTCUSDT"
    price: float
    qty: float
    buyer_is_maker: bool  # True: the aggressor sold (hit the bid)
    trade_id: int  # `t` for trade, `a` for aggTrade
    trade_time_ms: int  # exchange trade time `T`
    event_time_ms: int  # exchange event time `E`
    aggregated: bool = False  # came from @aggTrade
    order_type: str = ""  # futures `X` (MARKET, INSURANCE_FUND, ...); "" on spot

    @property
    def aggressor_buy(self) -> bool:
        return not self.buyer_is_maker


class Quote(msgspec.Struct, frozen=True, gc=False):
    """Best bid and offer (``@bookTicker``)."""

    ts_ns: int  # local receive time
    symbol: str
    bid: float
    bid_qty: float
    ask: float
    ask_qty: float
    update_id: int  # `u`
    event_time_ms: int = 0  # futures `E`; 0 on spot (spot bookTicker has no time)
    transaction_time_ms: int = 0  # futures `T`; 0 on spot

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) * 0.5


class FeedEvent(msgspec.Struct, frozen=True, gc=False):
    """Something happened to the feed rather than the market.

    kind is one of: connect, disconnect, reconnect, gap, stall, malformed, server_shutdown,
    rollover (proactive reconnect before the 24 h limit), end (source exhausted).
    symbol is "" when the event concerns a whole connection.
    """

    ts_ns: int
    kind: str
    symbol: str = ""
    detail: str = ""  # human-readable; for malformed frames a short excerpt
    gap_ms: float = 0.0  # for gap/reconnect: how long no data flowed


class Tick(msgspec.Struct, frozen=True, gc=False):
    """A clock tick at a fixed event-time boundary, so timers expire in a quiet market."""

    ts_ns: int


MarketEvent = Trade | Quote | FeedEvent | Tick
