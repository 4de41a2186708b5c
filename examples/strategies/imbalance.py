"""An example strategy: follow the side the book leans to, when trade flow agrees.

Run it with ``execlab run examples/imbalance.yaml`` (from the project folder, or copy this
folder into a workspace). The decision layer still has the last word: an intent is sized by
the risk budget and refused when the machines say the market is not fit to trade.
"""

from __future__ import annotations

import math

from framework.execution.strategy import MarketView, Strategy
from framework.market.events import Trade


class ImbalanceFollower(Strategy):
    """Buys when bids outweigh asks by ``threshold`` (top-of-book imbalance) and recent trades
    were net buys; sells on the mirror image. At most one intent per ``cooldown_s`` per symbol,
    none while an order is open, none while the decision says not eligible (no noise in the log).

    params: threshold (0..1, default 0.5), notional_usd (default 200), cooldown_s (default 10),
    ttl_s (passive orders, default 10).
    """

    def __init__(self, params):
        super().__init__(params)
        self.threshold = float(self.params.get("threshold", 0.5))
        self.notional_usd = float(self.params.get("notional_usd", 200.0))
        self.cooldown_ns = int(float(self.params.get("cooldown_s", 10.0)) * 1e9)
        self.ttl_s = float(self.params.get("ttl_s", 10.0))
        self.flow: dict[str, float] = {}  # signed traded quantity since the last intent
        self.last_ns: dict[str, int] = {}

    def on_event(self, event, view: MarketView):
        if type(event) is Trade:
            signed = -event.qty if event.buyer_is_maker else event.qty
            self.flow[event.symbol] = self.flow.get(event.symbol, 0.0) + signed
        return ()

    def on_tick(self, view: MarketView):
        decision = view.decision
        if not decision["eligible"] or view.open_orders:
            return ()
        last = self.last_ns.get(view.symbol)
        if last is not None and view.ts_ns - last < self.cooldown_ns:
            return ()
        imbalance = view.metrics.get("imbalance", math.nan)
        flow = self.flow.get(view.symbol, 0.0)
        if imbalance > self.threshold and flow > 0:
            side = "buy"
        elif imbalance < -self.threshold and flow < 0:
            side = "sell"
        else:
            return ()
        self.last_ns[view.symbol] = view.ts_ns
        self.flow[view.symbol] = 0.0
        style = "take" if decision["aggressiveness"] == "take" else "passive"
        return [view.intent(side, self.notional_usd, style, ttl_s=self.ttl_s, tag="imbalance")]
