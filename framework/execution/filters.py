"""Exchange rules: Binance's per-symbol filters, applied to paper orders as the exchange would.

The rules come from a file in Binance's own ``exchangeInfo`` format (``GET /api/v3/exchangeInfo``
on spot, ``GET /fapi/v1/exchangeInfo`` on USD-M futures), so a file fetched from the exchange
can be dropped in as it is. The project ships one per market for the symbols of its recordings
(``data/exchangeinfo-spot.json``, ``data/exchangeinfo-usdm.json``; where the values come from:
``data/README.md``); ``execlab exchange-info`` refreshes them when online.

Filters applied (the rest of the file is kept but not checked, see docs/execution.md):

- ``PRICE_FILTER``: a limit price is rounded to ``tickSize`` in the passive direction (a buy
  down, a sell up: never more aggressive than asked), then checked against ``minPrice`` and
  ``maxPrice``.
- ``LOT_SIZE`` (every order) and ``MARKET_LOT_SIZE`` (market orders, i.e. our takers): the
  quantity is rounded **down** to ``stepSize``; below ``minQty`` or above ``maxQty`` the order
  is rejected (the exchange rejects, it never clamps). A step or bound of 0 is disabled, as
  Binance documents.
- ``NOTIONAL`` (spot) / ``MIN_NOTIONAL`` (spot before 2023, and USD-M where the field is
  ``notional``): price x quantity against the minimum (and, spot ``NOTIONAL``, the maximum).
  A market order has no price: the reference price stands in (Binance uses the average price
  of the last ``avgPriceMins`` minutes; we use the mid at decision) and the bounds apply only
  when ``applyMinToMarket`` / ``applyMaxToMarket`` (``applyToMarket``) say so. USD-M applies
  ``MIN_NOTIONAL`` to every order that is not reduce-only (we have no reduce-only orders).

Quantities and prices are rounded in decimal arithmetic (``Decimal`` of the float's shortest
representation), so 0.00807 stays 0.00807 and never becomes 0.008069999.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

from framework.spec.errors import SpecError, SpecErrors

MARKETS = ("spot", "usdm")
REST_PATH = {"spot": "/api/v3/exchangeInfo", "usdm": "/fapi/v1/exchangeInfo"}
REST_BASE = {"spot": "https://api.binance.com", "usdm": "https://fapi.binance.com"}


def _dec(x: float | str) -> Decimal:
    return Decimal(x) if isinstance(x, str) else Decimal(repr(float(x)))


def round_to_step(x: float, step: float, direction: str) -> float:
    """``x`` rounded to a multiple of ``step`` ('down' or 'up'); ``step`` 0 leaves it as it is."""
    if step <= 0:
        return x
    d, s = _dec(x), _dec(step)
    n = (d / s).to_integral_value(rounding=ROUND_FLOOR if direction == "down" else ROUND_CEILING)
    return float(n * s)


@dataclass(frozen=True)
class SymbolRules:
    """The filters of one symbol that paper orders are checked against. 0 disables a bound."""

    symbol: str
    market: str = "spot"
    source: str = "assumed"  # where the values come from, written into every order record
    status: str = "TRADING"
    tick_size: float = 0.0
    min_price: float = 0.0
    max_price: float = 0.0
    step_size: float = 0.0
    min_qty: float = 0.0
    max_qty: float = 0.0
    market_step_size: float = 0.0
    market_min_qty: float = 0.0
    market_max_qty: float = 0.0
    min_notional: float = 0.0
    max_notional: float = 0.0
    notional_filter: str = "NOTIONAL"  # the filter's name, as the reject names it
    apply_min_to_market: bool = True
    apply_max_to_market: bool = False

    def describe(self) -> str:
        """One line naming the values, for an ``assumed`` rule set."""
        return (f"tick_size {self.tick_size:g}, step_size {self.step_size:g}, min_qty {self.min_qty:g}, "
                f"max_qty {self.max_qty:g}, min_notional {self.min_notional:g}")


@dataclass(frozen=True)
class Checked:
    """The outcome of checking one order: its rounded quantity and price, or the filter that
    rejects it (``filter`` not None) with a human-readable ``detail``."""

    qty: float
    price: float | None
    filter: str | None = None
    detail: str = ""


def check_order(rules: SymbolRules, style: str, side: str, qty: float, price: float | None,
                ref_price: float | None) -> Checked:
    """Round ``qty`` (and the limit ``price`` of a passive order) as the exchange requires, or
    say which filter rejects the order. ``style`` 'take' is a MARKET order, 'passive' a LIMIT
    (post-only) order; ``ref_price`` prices a market order's notional (the mid at decision)."""
    market_order = style == "take"
    px = price
    if not market_order and px is not None:
        px = round_to_step(px, rules.tick_size, "down" if side == "buy" else "up")
        if px <= 0 or (rules.min_price > 0 and px < rules.min_price - 1e-12 * px):
            return Checked(qty, px, "PRICE_FILTER", f"price {px:g} below minPrice {rules.min_price:g}")
        if rules.max_price > 0 and px > rules.max_price * (1 + 1e-12):
            return Checked(qty, px, "PRICE_FILTER", f"price {px:g} above maxPrice {rules.max_price:g}")
    q = round_to_step(qty, rules.step_size, "down")
    lots = [("LOT_SIZE", rules.min_qty, rules.max_qty)]
    if market_order:
        q = round_to_step(q, rules.market_step_size, "down")
        lots.append(("MARKET_LOT_SIZE", rules.market_min_qty, rules.market_max_qty))
    for name, lo, hi in lots:
        if q <= 0 or (lo > 0 and q < lo * (1 - 1e-12)):
            return Checked(q, px, name, f"qty {qty:.10g} rounds down to {q:g}, below minQty {lo:g}")
        if hi > 0 and q > hi * (1 + 1e-12):
            return Checked(q, px, name, f"qty {q:g} above maxQty {hi:g}")
    ref = ref_price if market_order else px
    if ref:
        notional = q * ref
        lo_applies = rules.apply_min_to_market or not market_order
        hi_applies = rules.apply_max_to_market or not market_order
        if lo_applies and rules.min_notional > 0 and notional < rules.min_notional * (1 - 1e-12):
            return Checked(q, px, rules.notional_filter,
                           f"notional {notional:.6g} below minNotional {rules.min_notional:g}")
        if hi_applies and rules.max_notional > 0 and notional > rules.max_notional * (1 + 1e-12):
            return Checked(q, px, rules.notional_filter,
                           f"notional {notional:.6g} above maxNotional {rules.max_notional:g}")
    return Checked(q, px)


# --------------------------------------------------------------------------------------------
# exchangeInfo files


def _num(f: dict, key: str, where: str) -> float:
    v = f.get(key, "0")
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {key} {v!r}; expected a decimal number as text") from None
    if not math.isfinite(x) or x < 0:
        raise ValueError(f"{where}: {key} {v!r}; expected a finite number >= 0")
    return x


def rules_from_symbol(entry: dict, market: str, source: str) -> SymbolRules:
    """The rules of one ``symbols[]`` entry of an exchangeInfo answer. Raises ValueError."""
    sym = entry.get("symbol")
    if not isinstance(sym, str) or not sym:
        raise ValueError("a symbols entry without a symbol; expected \"symbol\": \"BTCUSDT\"")
    filters = entry.get("filters")
    if not isinstance(filters, list):
        raise ValueError(f"{sym}: no filters list; expected \"filters\": [...]")
    kw: dict[str, Any] = {"symbol": sym, "market": market, "source": source,
                          "status": str(entry.get("status", "TRADING"))}
    for f in filters:
        if not isinstance(f, dict):
            raise ValueError(f"{sym}: a filter that is not an object; expected {{\"filterType\": ...}}")
        t = f.get("filterType")
        where = f"{sym} {t}"
        if t == "PRICE_FILTER":
            kw.update(tick_size=_num(f, "tickSize", where), min_price=_num(f, "minPrice", where),
                      max_price=_num(f, "maxPrice", where))
        elif t == "LOT_SIZE":
            kw.update(step_size=_num(f, "stepSize", where), min_qty=_num(f, "minQty", where),
                      max_qty=_num(f, "maxQty", where))
        elif t == "MARKET_LOT_SIZE":
            kw.update(market_step_size=_num(f, "stepSize", where), market_min_qty=_num(f, "minQty", where),
                      market_max_qty=_num(f, "maxQty", where))
        elif t == "NOTIONAL":  # spot since 2023
            kw.update(notional_filter="NOTIONAL", min_notional=_num(f, "minNotional", where),
                      max_notional=_num(f, "maxNotional", where),
                      apply_min_to_market=bool(f.get("applyMinToMarket", True)),
                      apply_max_to_market=bool(f.get("applyMaxToMarket", False)))
        elif t == "MIN_NOTIONAL":
            if "notional" in f:  # USD-M: every order that is not reduce-only
                kw.update(notional_filter="MIN_NOTIONAL", min_notional=_num(f, "notional", where),
                          apply_min_to_market=True)
            else:  # spot, older format
                kw.update(notional_filter="MIN_NOTIONAL", min_notional=_num(f, "minNotional", where),
                          apply_min_to_market=bool(f.get("applyToMarket", True)))
    return SymbolRules(**kw)


def parse_exchange_info(text: str, path: str, market: str | None = None) -> dict[str, SymbolRules]:
    """Symbol -> rules from the text of an exchangeInfo answer. The market is the one named by
    ``futuresType`` (USD-M answers carry it) unless given. Errors name the file."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecErrors([SpecError(path, exc.lineno, exc.colno,
                                    f"not JSON ({exc.msg}); expected a Binance exchangeInfo answer")]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("symbols"), list):
        raise SpecErrors([SpecError(path, 1, 1, "no symbols list; expected a Binance exchangeInfo answer "
                                                "({\"timezone\": ..., \"symbols\": [...]})")])
    market = market or ("usdm" if doc.get("futuresType") == "U_MARGINED" else "spot")
    stamp = doc.get("serverTime")
    source = f"{Path(path).name}@{stamp}" if isinstance(stamp, int) else Path(path).name
    out: dict[str, SymbolRules] = {}
    errors = []
    for i, entry in enumerate(doc["symbols"]):
        try:
            r = rules_from_symbol(entry if isinstance(entry, dict) else {}, market, source)
        except ValueError as exc:
            errors.append(SpecError(path, 0, 0, f"symbols[{i}]: {exc}"))
            continue
        out[r.symbol] = r
    if errors:
        raise SpecErrors(errors)
    return out


def shipped_file(market: str) -> Path:
    """The exchangeInfo file used when the config names none: the current workspace's
    ``data/exchangeinfo-<market>.json`` if there is one (``execlab exchange-info`` writes it
    there), else the one shipped with the package."""
    from framework.spec import workspace

    name = f"exchangeinfo-{market}.json"
    ws = workspace.current()
    if ws is not None and (ws / "data" / name).is_file():
        return ws / "data" / name
    return workspace.DEFAULTS_DIR / "data" / name


_CACHE: dict[tuple[str, str], dict[str, SymbolRules]] = {}


def load_rules(path: str | Path, market: str | None = None) -> dict[str, SymbolRules]:
    """The rules in an exchangeInfo file, read once per process (by path and market). ``market``
    None: the file's own (``futuresType`` marks USD-M)."""
    key = (str(path), market or "")
    if key not in _CACHE:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpecErrors([SpecError(str(p), 0, 0, f"cannot read exchange rules ({exc.strerror}); "
                                                      "expected an exchangeInfo JSON file")]) from None
        _CACHE[key] = parse_exchange_info(text, str(p), market)
    return _CACHE[key]


def assumed_rules(symbol: str, market: str, tick_size: float, assume: Any, why: str) -> SymbolRules:
    """The rules a session assumes for a symbol the exchangeInfo file does not list
    (``assume``: step_size, min_qty, max_qty, min_notional attributes)."""
    r = SymbolRules(symbol=symbol, market=market, tick_size=tick_size, step_size=float(assume.step_size),
                    min_qty=float(assume.min_qty), max_qty=float(assume.max_qty),
                    min_notional=float(assume.min_notional))
    return SymbolRules(**{**r.__dict__, "source": f"assumed ({why}): {r.describe()}"})


def market_of_quote(event_time_ms: int) -> str:
    """USD-M bookTicker frames carry the event time ``E``; spot ones do not."""
    return "usdm" if event_time_ms else "spot"


def resolve_rules(symbol: str, enabled: bool, market: str, file: str | None, tick_size: float,
                  assume: Any, quote_event_time_ms: int) -> SymbolRules | None:
    """The rules a session applies to ``symbol`` (None when disabled): from the configured
    exchangeInfo file, else the shipped one of the market (``auto``: the quotes say which),
    else the assumed ones, which name themselves in every order record."""
    if not enabled:
        return None
    if market == "auto":
        market = None if file else market_of_quote(quote_event_time_ms)
    table = load_rules(file, market) if file else load_rules(shipped_file(market), market)
    found = table.get(symbol)
    if found is not None:
        return found
    where = Path(file).name if file else shipped_file(market or "spot").name
    return assumed_rules(symbol, market or "spot", tick_size, assume, f"{symbol} not in {where}")


# --------------------------------------------------------------------------------------------
# refresh from the exchange


def fetch_exchange_info(market: str, symbols: list[str], base_url: str | None = None,
                        timeout_s: float = 15.0) -> str:
    """Binance's exchangeInfo answer for ``symbols`` (all symbols when empty), as text.
    Raises OSError when the exchange cannot be reached or answers with an error."""
    import urllib.error
    import urllib.parse
    import urllib.request

    url = (base_url or REST_BASE[market]).rstrip("/") + REST_PATH[market]
    if symbols and market == "spot":
        url += "?" + urllib.parse.urlencode({"symbols": json.dumps(symbols, separators=(",", ":"))})
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - fixed https URL or the user's own
            body = resp.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        raise OSError(f"{url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OSError(f"cannot reach {url} ({reason})") from None
    if symbols and market == "usdm":  # the futures endpoint has no symbol parameter: keep ours only
        doc = json.loads(body)
        wanted = set(symbols)
        doc["symbols"] = [s for s in doc.get("symbols", []) if s.get("symbol") in wanted]
        body = json.dumps(doc, indent=2)
    return body
