"""Seeded synthetic order flow, declared as phases in ``configs/scenarios/*.yaml``.

The generator writes what Binance would send: raw combined-stream frames (``bookTicker`` and
``trade``/``aggTrade``, spot or USD-M layout) with local receive stamps. They go through the same
decoder as live data, can be served by the fake Binance server, or written as a
``.frames.gz`` recording. Same spec and seed, same bytes.

Model, per phase (numbers are means; all draws come from ``numpy.random.default_rng(seed)``):

- quote updates and background trades arrive as Poisson processes (``quote_rate_hz``,
  ``trade_rate_hz``); trade bursts (``burst_rate_hz``) bring ``burst_trades_mean`` one-sided
  trades within ``burst_span_ms``;
- the mid is a random walk in log space (``vol_bps_per_sqrt_s``) plus a deterministic move
  (``drift_bps_per_s``), continuous across phases;
- the spread is ``spread_bps`` (ramping linearly to ``spread_bps_end``) times a uniform factor in
  [0.5, 1.5], never below one tick; the book never crosses;
- trades print at the touch: buys at the ask, sells at the bid;
- ``quote_gaps`` remove every quote inside their windows (trades keep printing);
- receive stamp = exchange time + ``latency_ms`` + |N(0, ``latency_jitter_ms``)|, kept
  non-decreasing.
"""

from __future__ import annotations

import gzip
import math
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from framework.spec.errors import SpecError, SpecErrors

from .decode import FrameDecoder
from .events import MarketEvent

TOP_DEFAULTS: dict[str, Any] = {
    "market": "spot", "seed": 0, "start_ns": 1_723_161_600_000_000_000,  # 2024-08-09 00:00 UTC
    "initial_mid": 60_000.0, "tick_size": 0.01, "lot_size": 0.00001,
    "latency_ms": 5.0, "latency_jitter_ms": 1.0,
}
PHASE_DEFAULTS: dict[str, Any] = {
    "quote_rate_hz": 10.0, "trade_rate_hz": 2.0, "spread_bps": 0.0, "vol_bps_per_sqrt_s": 1.0,
    "drift_bps_per_s": 0.0, "trade_qty_mean": 0.01, "quote_qty_mean": 1.0, "buy_share": 0.5,
    "burst_rate_hz": 0.0, "burst_trades_mean": 10.0, "burst_span_ms": 100.0,
    "burst_buy_share": 0.5, "quote_gaps": [],
}


def load_scenario(path: str | Path) -> dict:
    """Load and validate a scenario file; defaults filled in. Raises SpecErrors."""
    from framework.spec.schema import load_validated

    doc = load_validated(path, "scenario")
    errors: list[SpecError] = []
    for i, ph in enumerate(doc.data["phases"]):
        for j, gap in enumerate(ph.get("quote_gaps", [])):
            if gap["at_s"] >= ph["duration_s"]:
                errors.append(doc.error(("phases", i, "quote_gaps", j, "at_s"),
                                        f"quote gap starts at {gap['at_s']} s, after the phase "
                                        f"ends ({ph['duration_s']} s); expected at_s < duration_s"))
    names = [ph["name"] for ph in doc.data["phases"]]
    for i, name in enumerate(names):
        if name in names[:i]:
            errors.append(doc.error(("phases", i, "name"),
                                    f"phase name {name!r} repeated; expected unique phase names"))
    if errors:
        raise SpecErrors(errors)
    return normalise(doc.data)


def normalise(spec: Mapping[str, Any]) -> dict:
    """A spec dict with every default filled in (accepts an already-normalised spec)."""
    out = {**TOP_DEFAULTS, **spec}
    out.setdefault("trade_stream", "aggTrade" if out["market"] == "usdm" else "trade")
    out["phases"] = [{**PHASE_DEFAULTS, **ph} for ph in spec["phases"]]
    for ph in out["phases"]:
        ph.setdefault("spread_bps_end", ph["spread_bps"])
    return out


def resolve(path_or_spec: str | Path | Mapping[str, Any]) -> dict:
    """A spec from a dict, a YAML path, or a bare scenario name (``"shock"``)."""
    if isinstance(path_or_spec, Mapping):
        return normalise(path_or_spec)
    p = Path(path_or_spec)
    if not p.exists() and not p.suffix:
        from framework.spec import workspace

        p = workspace.scenarios_dir() / f"{p.name}.yaml"
    return load_scenario(p)


def _decimals(step: float) -> int:
    d = 0
    while d < 12 and abs(round(step * 10**d) - step * 10**d) > 1e-9:
        d += 1
    return d


def phase_bounds(path_or_spec) -> list[tuple[str, int, int]]:
    """(phase name, start exchange ns, end exchange ns) of every phase."""
    spec = resolve(path_or_spec)
    t = spec["start_ns"]
    out = []
    for ph in spec["phases"]:
        end = t + int(round(ph["duration_s"] * 1e9))
        out.append((ph["name"], t, end))
        t = end
    return out


def scenario_frames(path_or_spec, seed: int | None = None) -> Iterator[tuple[int, str]]:
    """(receive ns, raw frame) in receive order. Same spec and seed, same frames."""
    spec = resolve(path_or_spec)
    rng = np.random.default_rng(spec["seed"] if seed is None else seed)
    sym = spec["symbol"]
    low = sym.lower()
    tick = float(spec["tick_size"])
    lot = float(spec["lot_size"])
    pd, qd = _decimals(tick), _decimals(lot)
    usdm = spec["market"] == "usdm"
    agg = spec["trade_stream"] == "aggTrade"
    lat_ns = spec["latency_ms"] * 1e6
    jit_ns = spec["latency_jitter_ms"] * 1e6
    log_mid = math.log(spec["initial_mid"])
    t_start = int(spec["start_ns"])
    update_id = 1_000_000
    trade_id = 5_000_000
    last_recv = 0
    pfmt = f"{{:.{pd}f}}".format
    qfmt = f"{{:.{qd}f}}".format
    q_head = f'{{"stream":"{low}@bookTicker","data":{{'
    if agg:
        t_head = f'{{"stream":"{low}@aggTrade","data":{{"e":"aggTrade","E":'
    else:
        t_head = f'{{"stream":"{low}@trade","data":{{"e":"trade","E":'

    for ph in spec["phases"]:
        dur = float(ph["duration_s"])
        dur_ns = int(round(dur * 1e9))
        # -- event times (seconds from the phase start) ------------------------------------
        nq = rng.poisson(ph["quote_rate_hz"] * dur)
        q_t = rng.uniform(0.0, dur, nq)
        nt = rng.poisson(ph["trade_rate_hz"] * dur)
        t_t = rng.uniform(0.0, dur, nt)
        t_buy = rng.random(nt) < ph["buy_share"]
        nb = rng.poisson(ph["burst_rate_hz"] * dur)
        if nb:
            sizes = 1 + rng.poisson(max(ph["burst_trades_mean"] - 1.0, 0.0), nb)
            starts = rng.uniform(0.0, dur, nb)
            sides = rng.random(nb) < ph["burst_buy_share"]
            offs = rng.uniform(0.0, ph["burst_span_ms"] / 1e3, int(sizes.sum()))
            b_t = np.minimum(np.repeat(starts, sizes) + offs, np.nextafter(dur, 0))
            t_t = np.concatenate([t_t, b_t])
            t_buy = np.concatenate([t_buy, np.repeat(sides, sizes)])
        for gap in ph["quote_gaps"]:
            keep = (q_t < gap["at_s"]) | (q_t >= gap["at_s"] + gap["duration_s"])
            q_t = q_t[keep]
        nq, nt = len(q_t), len(t_t)
        times = np.concatenate([q_t, t_t])
        is_quote = np.concatenate([np.ones(nq, bool), np.zeros(nt, bool)])
        buy = np.concatenate([np.zeros(nq, bool), t_buy])
        order = np.argsort(times, kind="stable")
        times, is_quote, buy = times[order], is_quote[order], buy[order]
        n = len(times)
        # -- the mid at every event ---------------------------------------------------------
        dt = np.diff(times, prepend=0.0)
        steps = (ph["vol_bps_per_sqrt_s"] * 1e-4) * np.sqrt(dt) * rng.standard_normal(n)
        path = log_mid + np.cumsum(steps) + (ph["drift_bps_per_s"] * 1e-4) * times
        log_mid = float(log_mid + (steps.sum() if n else 0.0)
                        + ph["drift_bps_per_s"] * 1e-4 * dur)
        mid = np.exp(path)
        frac = times / dur
        spread_bps = ph["spread_bps"] + (ph["spread_bps_end"] - ph["spread_bps"]) * frac
        spread = mid * spread_bps * 1e-4 * rng.uniform(0.5, 1.5, n)
        spread_ticks = np.maximum(1, np.rint(spread / tick)).astype(np.int64)
        bid_ticks = np.floor((mid - spread_ticks * tick * 0.5) / tick).astype(np.int64)
        bid_ticks = np.maximum(bid_ticks, 1)
        ask_ticks = bid_ticks + spread_ticks
        # -- sizes -----------------------------------------------------------------------------
        tq = np.maximum(1, np.rint(rng.exponential(ph["trade_qty_mean"], n) / lot)).astype(np.int64)
        bq = np.maximum(1, np.rint(rng.exponential(ph["quote_qty_mean"], n) / lot)).astype(np.int64)
        aq = np.maximum(1, np.rint(rng.exponential(ph["quote_qty_mean"], n) / lot)).astype(np.int64)
        # -- clocks ------------------------------------------------------------------------------
        ex_ns = t_start + np.rint(times * 1e9).astype(np.int64)
        recv = ex_ns + np.rint(lat_ns + np.abs(rng.standard_normal(n)) * jit_ns).astype(np.int64)
        recv = np.sort(recv)  # receive order; ties keep the exchange order
        recv = np.maximum(recv, last_recv)
        if n:
            last_recv = int(recv[-1])
        e_ms = ex_ns // 1_000_000
        t_start += dur_ns
        # -- frames ------------------------------------------------------------------------------
        bid_s = (bid_ticks * tick).tolist()
        ask_s = (ask_ticks * tick).tolist()
        for r, q, b, a, bqi, aqi, tqi, isbuy, ems in zip(
                recv.tolist(), is_quote.tolist(), bid_s, ask_s, (bq * lot).tolist(),
                (aq * lot).tolist(), (tq * lot).tolist(), buy.tolist(), e_ms.tolist(),
                strict=True):
            if q:
                update_id += 1
                if usdm:
                    yield r, (f'{q_head}"e":"bookTicker","u":{update_id},"s":"{sym}",'
                              f'"b":"{pfmt(b)}","B":"{qfmt(bqi)}","a":"{pfmt(a)}",'
                              f'"A":"{qfmt(aqi)}","T":{ems},"E":{ems}}}}}')
                else:
                    yield r, (f'{q_head}"u":{update_id},"s":"{sym}","b":"{pfmt(b)}",'
                              f'"B":"{qfmt(bqi)}","a":"{pfmt(a)}","A":"{qfmt(aqi)}"}}}}')
            else:
                trade_id += 1
                px = pfmt(a if isbuy else b)
                m = "false" if isbuy else "true"
                if agg:
                    tail = (f'"a":{trade_id},"p":"{px}","q":"{qfmt(tqi)}","f":{trade_id},'
                            f'"l":{trade_id},"T":{ems},"m":{m}')
                else:
                    tail = f'"t":{trade_id},"p":"{px}","q":"{qfmt(tqi)}","T":{ems},"m":{m}'
                if usdm:
                    tail += ',"X":"MARKET"' if not agg else ""
                else:
                    tail += ',"M":true'
                yield r, f'{t_head}{ems},"s":"{sym}",{tail}}}}}'


def scenario_events(path_or_spec, seed: int | None = None,
                    decoder: FrameDecoder | None = None) -> Iterator[MarketEvent]:
    """The scenario's frames decoded by the live decoder: Trade and Quote events."""
    dec = (decoder or FrameDecoder()).decode
    for recv_ns, raw in scenario_frames(path_or_spec, seed):
        ev = dec(raw, recv_ns)
        if ev is not None:
            yield ev


def write_frames(path: str | Path, frames) -> int:
    """Write (recv ns, raw) pairs as a ``.frames.gz`` recording; returns the line count."""
    n = 0
    with gzip.open(path, "wb", compresslevel=6) as f:
        buf = []
        for recv_ns, raw in frames:
            buf.append(f"{recv_ns} {raw}\n")
            n += 1
            if len(buf) >= 4096:
                f.write("".join(buf).encode())
                buf.clear()
        f.write("".join(buf).encode())
        f.flush(zlib.Z_SYNC_FLUSH)
    return n
