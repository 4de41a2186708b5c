"""Frame builders and bounded waits used by the market tests."""

from __future__ import annotations

import asyncio

from framework.market.events import FeedEvent

BOUND_S = 10.0  # upper bound for any wait: a failing test fails, it never hangs


def quote_frame(sym: str, u: int, bid: str = "100.00", ask: str = "100.01") -> str:
    return (f'{{"stream":"{sym.lower()}@bookTicker","data":{{"u":{u},"s":"{sym.upper()}",'
            f'"b":"{bid}","B":"1.5","a":"{ask}","A":"2.5"}}}}')


def trade_frame(sym: str, t: int, price: str = "100.00", qty: str = "0.1") -> str:
    return (f'{{"stream":"{sym.lower()}@trade","data":{{"e":"trade","E":1723161255343,'
            f'"s":"{sym.upper()}","t":{t},"p":"{price}","q":"{qty}","T":1723161255342,'
            f'"m":true,"M":true}}}}')


async def next_event(src, pred, limit: int = 100_000):
    """The next event of ``src`` satisfying ``pred`` (bounded in count and time)."""
    async with asyncio.timeout(BOUND_S):
        n = 0
        async for ev in src:
            if pred(ev):
                return ev
            n += 1
            if n >= limit:
                break
    raise AssertionError("event not seen")


def feed(kind: str):
    return lambda ev: type(ev) is FeedEvent and ev.kind == kind


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))
