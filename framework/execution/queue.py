"""Queue-position models for passive (resting) orders.

A resting limit order fills only once the quantity queued ahead of it at its price has gone.
The market data says how much is queued at our price (the *level quantity*: from the L2 book
where depth is available, else the displayed size of the top of book when our price is the
touch) and which prints traded there; it does not say whether a decrease of the level was a
cancellation ahead of us or behind us. The models differ only in that assumption:

- ``conservative``: only prints at our price move us forward; a drop of the level not explained
  by prints is taken as cancellations behind us, or a fixed share ``cancel_ahead_fraction`` of
  it ahead of us (the engine's original model, kept bit for bit).
- ``power`` (``n``) and ``log``: the probabilistic family of hftbacktest's ``ProbQueueModel``
  with ``PowerProbQueueFunc`` (``f(x) = x ** n``) and ``LogProbQueueFunc`` (``f(x) = ln(1 + x)``).
  A decrease ``d`` of the level not explained by prints is split between the quantity ahead
  (``front``) and behind (``back = level - front``): the part ahead is
  ``d * f(front) / (f(front) + f(back))``; what the back cannot hold comes from the front; the
  front never exceeds the level. A large front attracts the cancellations: orders far from the
  head of a queue are the likelier to be pulled.

Each resting order holds one :class:`QueuePosition` per configured model. The engine feeds every
position the same two things, whichever source they come from:

- ``on_level(qty)``: the quantity at our price now (``None`` when it cannot be seen, 0 when the
  level is known to be empty);
- ``on_trade(price, qty, aggressor)``: a print; the return value is the quantity that reached
  us (what the print left after the queue ahead), and ``how`` says whether it traded at our
  price (``queue_consumed``) or through it (``trade_through``).

With ``fill_on_quote_through`` a model also fills the whole remainder when the opposite side is
quoted at or through our price (``quote_through``): a resting seller at our bid means every bid at
that price, ours included, has traded. Shared rules (all models): prints count only when the
aggressor is on the other side; a print through our price clears the queue and fills us for at
most the print's size; our own orders are not in the market data, and one print's quantity is
shared among our orders in arrival order by the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KINDS = ("conservative", "power", "log")

QUEUE_CONSUMED = "queue_consumed"
TRADE_THROUGH = "trade_through"
QUOTE_THROUGH = "quote_through"
# What a print leaves for us after the queue ahead, below this share of the print, is a float
# residue of the estimate (front = level - share * change ...), not a fill of 1e-17 BTC.
RESIDUE = 1e-9


@dataclass(frozen=True)
class QueueModelSpec:
    """One configured queue model (``execution.passive.queue.models.<name>``)."""

    name: str
    kind: str = "conservative"  # conservative | power | log
    n: float = 2.0  # power: the exponent of f(x) = x ** n
    cancel_ahead_fraction: float = 0.0  # conservative: share of unexplained drops taken as ahead of us
    fill_on_quote_through: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"queue model {self.name!r}: kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.kind == "power" and not (self.n > 0 and math.isfinite(self.n)):
            raise ValueError(f"queue model {self.name!r}: n = {self.n!r}; expected a finite number > 0")
        if not 0.0 <= self.cancel_ahead_fraction <= 1.0:
            raise ValueError(f"queue model {self.name!r}: cancel_ahead_fraction {self.cancel_ahead_fraction!r}; "
                             "expected a number in [0, 1]")

    def position(self, side: str, price: float, eps: float) -> QueuePosition:
        """A fresh queue position for an order resting at ``price``."""
        if self.kind == "conservative":
            return ConservativePosition(self, side, price, eps)
        return ProbPosition(self, side, price, eps)


# Models every session can name without declaring them.
BUILTIN_MODELS: dict[str, QueueModelSpec] = {
    "conservative": QueueModelSpec("conservative"),
    "linear": QueueModelSpec("linear", "power", n=1.0),
    "power2": QueueModelSpec("power2", "power", n=2.0),
    "power3": QueueModelSpec("power3", "power", n=3.0),
    "log": QueueModelSpec("log", "log"),
    "quote_through": QueueModelSpec("quote_through", "conservative", fill_on_quote_through=True),
}


def ahead_share(spec: QueueModelSpec, front: float, back: float) -> float:
    """The share of an unexplained decrease of the level taken from ahead of us:
    ``f(front) / (f(front) + f(back))``; 0 when both sides are empty."""
    if front <= 0.0:
        return 0.0
    if back <= 0.0:
        return 1.0
    if spec.kind == "log":
        ff, fb = math.log1p(front), math.log1p(back)
    else:
        try:
            ff, fb = front ** spec.n, back ** spec.n
        except OverflowError:  # the same ratio in log space: 1 / (1 + (back / front) ** n)
            x = spec.n * (math.log(back) - math.log(front))
            return 0.0 if x > 700.0 else 1.0 / (1.0 + math.exp(x))
    return ff / (ff + fb)


def prob_front_after_decrease(spec: QueueModelSpec, front: float, level_before: float, level_after: float,
                              traded: float) -> float:
    """The probabilistic models' estimate of the quantity ahead after the level went from
    ``level_before`` to ``level_after`` while ``traded`` printed at our price (already taken
    off ``front``)."""
    change = level_before - level_after - traded  # what prints do not explain
    if change <= 0.0:
        return max(min(front, level_after), 0.0)
    back = max(level_before - front, 0.0)
    share = ahead_share(spec, front, back)
    from_back = (1.0 - share) * change
    est = front - share * change + min(back - from_back, 0.0)  # what the back cannot hold comes from the front
    return max(min(est, level_after), 0.0)


class QueuePosition:
    """The estimate of the quantity ahead of one resting order under one model."""

    __slots__ = ("spec", "sgn", "price", "eps", "front", "front0", "traded")

    def __init__(self, spec: QueueModelSpec, side: str, price: float, eps: float):
        self.spec = spec
        self.sgn = 1 if side == "buy" else -1
        self.price = price
        self.eps = eps
        self.front: float | None = None  # quantity ahead; None = unknown (behind the touch, no depth)
        self.front0: float | None = None  # at placement (or when first known)
        self.traded = 0.0  # printed at our price since the last level observation

    def place(self, level_qty: float | None, own_ahead: float) -> None:
        """At arrival: the level quantity at our price (None unknown) and our own earlier orders
        resting there."""
        raise NotImplementedError

    def on_level(self, qty: float | None, own_ahead: float = 0.0) -> None:
        raise NotImplementedError

    def classify(self, price: float, aggressor: str) -> int:
        """0 at our price, 1 through it, -1 not ours (wrong aggressor or price away from us)."""
        if (aggressor == "sell") != (self.sgn > 0):
            return -1  # the aggressor is on our side: it does not trade against us
        d = (self.price - price) * self.sgn  # > 0: the print is through our price
        if abs(d) <= self.eps:
            return 0
        return 1 if d > 0 else -1

    def on_trade(self, price: float, qty: float, aggressor: str) -> tuple[float, str | None]:
        """A print (``aggressor`` 'buy' or 'sell'). Returns the quantity that reached us and how."""
        where = self.classify(price, aggressor)
        if where == 0:
            self.traded += qty
            if self.front is None:
                return 0.0, None  # queue unknown: nothing can be claimed
            used = min(self.front, qty) if self.front > 0 else 0.0
            if qty - used <= qty * RESIDUE:
                used = qty  # a float residue of the queue arithmetic, not volume that reached us
            self.front = max(self.front - used, 0.0)
            return qty - used, QUEUE_CONSUMED
        if where == 1:
            self.front = 0.0  # the whole level traded away
            if self.front0 is None:
                self.front0 = 0.0
            return qty, TRADE_THROUGH
        return 0.0, None

    def quoted_through(self, bid: float, ask: float) -> bool:
        """The opposite side is quoted at or through our price (only with fill_on_quote_through)."""
        if not self.spec.fill_on_quote_through:
            return False
        return ask <= self.price + self.eps if self.sgn > 0 else bid >= self.price - self.eps


class ConservativePosition(QueuePosition):
    """Prints move us; unexplained drops of the displayed size are behind us, or a fixed share
    ahead of us while our price stays the level observed."""

    __slots__ = ("last_level",)

    def __init__(self, spec: QueueModelSpec, side: str, price: float, eps: float):
        super().__init__(spec, side, price, eps)
        self.last_level: float | None = None

    def place(self, level_qty: float | None, own_ahead: float) -> None:
        if level_qty is None:
            self.front = None
        else:
            self.front = level_qty + own_ahead
            self.last_level = level_qty if level_qty > 0.0 else None
        self.front0 = self.front

    def on_level(self, qty: float | None, own_ahead: float = 0.0) -> None:
        if qty is None or qty <= 0.0:
            self.last_level = None
        else:
            frac = self.spec.cancel_ahead_fraction
            if self.front is None:
                self.front = qty + own_ahead
                self.front0 = self.front
            elif frac > 0 and self.last_level is not None and self.front > 0:
                unexplained = self.last_level - qty - self.traded
                if unexplained > 0:
                    self.front = max(0.0, self.front - frac * unexplained)
            self.last_level = qty
        self.traded = 0.0


class ProbPosition(QueuePosition):
    """hftbacktest's probabilistic queue position: unexplained decreases of the level are
    split between ahead and behind by ``f(front) / (f(front) + f(back))``. Our own orders are
    not counted ahead (the engine shares each print among them in arrival order)."""

    __slots__ = ("level",)

    def __init__(self, spec: QueueModelSpec, side: str, price: float, eps: float):
        super().__init__(spec, side, price, eps)
        self.level: float | None = None

    def place(self, level_qty: float | None, own_ahead: float) -> None:
        self.front = self.front0 = self.level = level_qty

    def on_level(self, qty: float | None, own_ahead: float = 0.0) -> None:
        if qty is None:
            self.level = None  # not visible: the next observation starts afresh
        elif self.front is None:
            self.front = self.front0 = self.level = qty
        elif self.level is None:
            self.front = max(min(self.front, qty), 0.0)
            self.level = qty
        else:
            self.front = prob_front_after_decrease(self.spec, self.front, self.level, qty, self.traded)
            self.level = qty
        self.traded = 0.0
