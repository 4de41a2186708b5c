"""The state engine as one compiled kernel: a block of events at a time for the replay fast
path, one event at a time for the live path.

Replay decodes a block of one symbol's market events into numpy columns and calls
``MetricKernel.run`` once per block instead of calling ``SymbolMetrics`` once per event; the
result is a matrix with one row of metric values per event. The live path calls
``MetricKernel.step`` per event through ``KernelMetrics`` (``SymbolMetrics``' interface): the
same compiled code on a block of one event, reached through an address table so a call costs
about a microsecond (see ``_step``). ``SymbolMetrics``
(``framework/state/engine.py``) is the reference, and every row must be bit for bit the
``values`` dict it holds after the same event. So the kernel repeats its float operations in
the same order: running sums added and subtracted in the same sequence, the same ``log``,
``sqrt``, ``* 0.5`` and ``/ ws``, the same clipping, NaN and inf rules, the resets to exactly
0.0, the late-event clamping and the feed-gap invalidation.

State lives in numpy arrays owned by ``MetricKernel`` and passed to one compiled function
(helpers taking arrays would pay reference counting on every call). Windows are grouped as in
``SymbolMetrics`` (one per window length and family) and are ring buffers of timestamps and
payloads, in one flat pool per family, each ring with its own power-of-two capacity. The
kernel never allocates: before touching the state for an event it checks that every ring the
event may append to has room; if one is full it returns that event's index, and Python doubles
that ring and resumes there. A ring's capacity is at most twice the most its window held.

The rolling median keeps its window's values in two heaps, like ``SymbolMetrics``: the lower
half negated in one min-heap, the upper half in another. Values leave the window in arrival
order, so heap entries carry their arrival number and an entry is gone exactly when its number
is below the window's first live one: a removal only updates the live count of the heap that
holds the entry (each ring entry records its side), and gone entries are dropped when they
reach a top or when a full heap is compacted. The heaps are rebalanced once per event, before
the median is read; any correct median gives the same bits.
"""

from __future__ import annotations

import math
import os
import sys
import time

import numba
import numba.extending
import numpy as np

from ..market.events import FeedEvent, Quote, Tick, Trade
from ..spec.metrics import KINDS, MetricSet
from .engine import _NS_PER_S, INVALIDATING_FEED_KINDS, SymbolMetrics

QUOTE, TRADE, TICK, GAP, FEED = 0, 1, 2, 3, 4  # event kinds (int8 column)

INITIAL_CAPACITY = 16  # entries per ring at start; a power of two, doubled when full

# Value slots: the kernel keeps every metric value in ``wv``; column j of a row is
# wv[colsrc[j]]. Book and age slots first, then each window's outputs.
_MID, _SPREAD, _SBPS, _MICRO, _IMB, _QAGE, _TAGE = range(7)
_BOOK = {"mid": _MID, "spread": _SPREAD, "spread_bps": _SBPS, "microprice": _MICRO,
         "imbalance": _IMB, "quote_age": _QAGE, "trade_age": _TAGE}
_N_BOOK = 7
_QUOTE_KINDS = ("quote_rate", "realized_vol", "crossed_count")
_TRADE_KINDS = ("trade_rate", "volume_base_rate", "volume_quote_rate", "buy_ratio")

# Scalar state: si (int64) and sf (float64).
_NOW, _HAS_Q, _QTS, _HAS_T, _TTS, _LATE, _INVALID, _GAPS, _QUOTES, _TRADES, _HAS_PREV, \
    _NEED_R2 = range(12)
_PREV = 0
_NO_TIME = -(1 << 62)  # _NOW before the first event (SymbolMetrics._now)

# Ring metadata columns, shared by every family; family-specific columns follow.
_OFF, _CAP, _HEAD, _CNT = range(4)
_QW, _QNZ, _QCR = 4, 5, 6  # quote windows: window ns, nonzero returns, crossed quotes
_QWS, _QR2 = 0, 1  # qf: window in seconds, sum of squared returns
_TW = 4  # trade windows: window ns
_TWS, _TQTY, _TNOT, _TBUY = range(4)  # tf: seconds, base volume, quote volume, buy volume
_RW, _RHAS = 0, 1  # range windows (rw): window ns, a segment is open (its mid in rcur)
# median windows: window ns, has cur (the ring's last entry), live entries of each heap,
# heap sizes (gone entries included), number of the ring's first entry
_MW, _MHAS, _MNLO, _MNHI, _MSLO, _MSHI, _MSEQ = range(4, 11)

# derived metrics (dm, int64): rolling quantile or EWMA, the source's value slot, sample ns,
# window ns, samples needed, the current sample period, then the ring (offset, capacity,
# head, count: fixed capacity, as many samples as the window can hold), the EWMA's count and
# the first time an advance can change anything (the next sample period, or the oldest
# sample leaving the window; skipped before it, as ``_Derived.next_due``).
_DISQ, _DSRC, _DSAMP, _DW, _DMIN, _DBUCKET, _DOFF, _DCAP, _DHEAD, _DCNT, _DN, _DNEXT = range(12)
_DQUANT, _DALPHA, _DEWMA = range(3)  # df (float64): quantile, EWMA weight, EWMA value

_FAM_Q, _FAM_T, _FAM_R, _FAM_M = range(4)  # which pool needs room (returned in ``need``)

_BPS = 1e4
_INF = math.inf
_NAN = math.nan


@numba.njit(cache=True, inline="always")  # inlined into _run: no call, no reference counting
def _sift_up(mh, b, q, x, num):
    """Place (x, num) at slot q of the 4-ary min-heap stored as (value, number) pairs from mh[b],
    moving it up past every larger parent."""
    while q > 0:
        p = (q - 1) >> 2
        if x < mh[b + 2 * p]:
            mh[b + 2 * q] = mh[b + 2 * p]
            mh[b + 2 * q + 1] = mh[b + 2 * p + 1]
            q = p
        else:
            break
    mh[b + 2 * q] = x
    mh[b + 2 * q + 1] = num


@numba.njit(cache=True)
def _run(start, kind, ts, bid, bid_qty, ask, ask_qty, price, qty, bim, out, si, sf, wv, colsrc,
         qm, qf, qts, qr2, qcr, tm, tf, tts, tq, tn, tb, rm, rw, rcur, rts, rv,
         mm, mts, mv, mside, mh, dm, df, dts, dval, dsort, need):
    """Apply events start.. in order, writing row i of ``out`` after event i. Returns -1 when
    done, or the index of an event that needs room in ring need[1] of pool need[0] (none of
    that event applied yet).

    Range window j has two rings: 2j holds closed segments' mids as a decreasing deque (the
    maximum first), 2j + 1 as an increasing one. Median window j's heaps are 4-ary (half the
    depth of binary ones, the children in one cache line), at mh[8 * off] (lower) and
    mh[8 * off + 4 * cap] (upper), each room for 2 * cap entries; entry e of a heap at b is
    (mh[b + 2e], mh[b + 2e + 1]) = (value, arrival number), the number exact as a float.
    """
    nq = qm.shape[0]
    nt = tm.shape[0]
    nr = rw.shape[0]
    nm = mm.shape[0]
    nd = dm.shape[0]
    tbase = _N_BOOK + 3 * nq
    rbase = tbase + 4 * nt
    mbase = rbase + nr
    dbase = mbase + nm
    ncol = colsrc.shape[0]
    for i in range(start, kind.shape[0]):
        k = kind[i]
        # Room for one more entry in every ring this event may append to, before any change.
        if k == QUOTE:
            for j in range(nq):
                if qm[j, _CNT] == qm[j, _CAP]:
                    need[0] = _FAM_Q
                    need[1] = j
                    return i
            for j in range(nm):
                if mm[j, _CNT] == mm[j, _CAP]:
                    need[0] = _FAM_M
                    need[1] = j
                    return i
        if k == QUOTE or k == GAP:
            for j in range(2 * nr):
                if rm[j, _CNT] == rm[j, _CAP]:
                    need[0] = _FAM_R
                    need[1] = j
                    return i
        if k == TRADE:
            for j in range(nt):
                if tm[j, _CNT] == tm[j, _CAP]:
                    need[0] = _FAM_T
                    need[1] = j
                    return i

        t = ts[i]
        now = si[_NOW]
        # What the event changed beyond eviction (SymbolMetrics passes changed=True).
        cq = False  # a valid quote: quote, range and median windows
        ct = False  # a valid trade: trade windows
        cg = False  # an invalidating feed event: range and median windows
        advance = True
        mid = sbps = r2 = 0.0
        crossed = 0
        tqty = notional = buy = 0.0
        if k == TICK:
            if t > now:
                now = t
                si[_NOW] = t
            else:
                advance = False  # on_tick is a no-op
        else:
            if t < now:
                t = now
                si[_LATE] += 1
            else:
                now = t
                si[_NOW] = t
            if k == QUOTE:
                qb = bid[i]
                qa = ask[i]
                bq = bid_qty[i]
                aq = ask_qty[i]
                if not (0.0 < qb and qb < _INF and 0.0 < qa and qa < _INF and 0.0 <= bq
                        and bq < _INF and 0.0 <= aq and aq < _INF):
                    si[_INVALID] += 1
                else:
                    cq = True
                    si[_QUOTES] += 1
                    si[_HAS_Q] = 1
                    si[_QTS] = t
                    mid = (qb + qa) * 0.5
                    spread = qa - qb
                    sbps = spread / mid * _BPS
                    wv[_MID] = mid
                    wv[_SPREAD] = spread
                    wv[_SBPS] = sbps
                    depth = bq + aq
                    if depth > 0.0:
                        wv[_MICRO] = (qb * aq + qa * bq) / depth
                        wv[_IMB] = (bq - aq) / depth
                    else:
                        wv[_MICRO] = mid
                        wv[_IMB] = _NAN
                    if si[_NEED_R2] != 0 and si[_HAS_PREV] != 0:
                        lr = math.log(mid / sf[_PREV])
                        r2 = lr * lr
                    sf[_PREV] = mid
                    si[_HAS_PREV] = 1
                    crossed = 1 if qb >= qa else 0
            elif k == TRADE:
                pr = price[i]
                tqty = qty[i]
                if not (0.0 < pr and pr < _INF and 0.0 < tqty and tqty < _INF):
                    si[_INVALID] += 1
                else:
                    ct = True
                    si[_TRADES] += 1
                    si[_HAS_T] = 1
                    si[_TTS] = t
                    buy = 0.0 if bim[i] else tqty
                    notional = pr * tqty
            elif k == GAP:
                cg = True
                si[_GAPS] += 1
                si[_HAS_PREV] = 0
                wv[_MID] = _NAN
                wv[_SPREAD] = _NAN
                wv[_SBPS] = _NAN
                wv[_MICRO] = _NAN
                wv[_IMB] = _NAN

        if advance:
            # Each window: append what the event brings, evict what left (now - W, now],
            # then refresh its outputs if anything changed.
            for j in range(nq):
                o = qm[j, _OFF]
                mask = qm[j, _CAP] - 1
                h = qm[j, _HEAD]
                n = qm[j, _CNT]
                if cq:
                    e = o + ((h + n) & mask)
                    qts[e] = t
                    qr2[e] = r2
                    qcr[e] = crossed
                    n += 1
                    qm[j, _CNT] = n
                    if r2 != 0.0:  # `if r2:` (NaN counts as nonzero)
                        qf[j, _QR2] += r2
                        qm[j, _QNZ] += 1
                    qm[j, _QCR] += crossed
                cut = now - qm[j, _QW]
                if n > 0 and qts[o + h] <= cut:
                    r2s = qf[j, _QR2]
                    nz = qm[j, _QNZ]
                    cr = qm[j, _QCR]
                    while n > 0 and qts[o + h] <= cut:
                        x = qr2[o + h]
                        if x != 0.0:
                            r2s -= x
                            nz -= 1
                        cr -= qcr[o + h]
                        h = (h + 1) & mask
                        n -= 1
                    if nz == 0:
                        r2s = 0.0
                    qf[j, _QR2] = r2s
                    qm[j, _QNZ] = nz
                    qm[j, _QCR] = cr
                    qm[j, _HEAD] = h
                    qm[j, _CNT] = n
                elif not cq:
                    continue
                e = _N_BOOK + 3 * j
                wv[e] = n / qf[j, _QWS]
                r2s = qf[j, _QR2]
                wv[e + 1] = math.sqrt(r2s) * _BPS if r2s > 0.0 else 0.0
                wv[e + 2] = float(qm[j, _QCR])

            for j in range(nt):
                o = tm[j, _OFF]
                mask = tm[j, _CAP] - 1
                h = tm[j, _HEAD]
                n = tm[j, _CNT]
                if ct:
                    e = o + ((h + n) & mask)
                    tts[e] = t
                    tq[e] = tqty
                    tn[e] = notional
                    tb[e] = buy
                    n += 1
                    tm[j, _CNT] = n
                    tf[j, _TQTY] += tqty
                    tf[j, _TNOT] += notional
                    tf[j, _TBUY] += buy
                cut = now - tm[j, _TW]
                if n > 0 and tts[o + h] <= cut:
                    sq = tf[j, _TQTY]
                    sn = tf[j, _TNOT]
                    sb = tf[j, _TBUY]
                    while n > 0 and tts[o + h] <= cut:
                        sq -= tq[o + h]
                        sn -= tn[o + h]
                        sb -= tb[o + h]
                        h = (h + 1) & mask
                        n -= 1
                    if n == 0:
                        sq = 0.0
                        sn = 0.0
                        sb = 0.0
                    tf[j, _TQTY] = sq
                    tf[j, _TNOT] = sn
                    tf[j, _TBUY] = sb
                    tm[j, _HEAD] = h
                    tm[j, _CNT] = n
                elif not ct:
                    continue
                e = tbase + 4 * j
                ws = tf[j, _TWS]
                wv[e] = n / ws
                sq = tf[j, _TQTY]
                wv[e + 1] = sq / ws if n > 0 else 0.0
                wv[e + 2] = tf[j, _TNOT] / ws if n > 0 else 0.0
                if n > 0 and sq > 0.0:
                    x = tf[j, _TBUY] / sq
                    x = 0.0 if x < 0.0 else (1.0 if x > 1.0 else x)
                else:
                    x = _NAN
                wv[e + 3] = x

            for j in range(nr):
                if (cq or cg) and rw[j, _RHAS] != 0:
                    # Close the open segment at t: its mid joins both monotonic deques.
                    c = rcur[j]
                    for r in range(2 * j, 2 * j + 2):
                        o = rm[r, _OFF]
                        mask = rm[r, _CAP] - 1
                        h = rm[r, _HEAD]
                        n = rm[r, _CNT]
                        if r & 1:
                            while n > 0 and rv[o + ((h + n - 1) & mask)] >= c:
                                n -= 1
                        else:
                            while n > 0 and rv[o + ((h + n - 1) & mask)] <= c:
                                n -= 1
                        e = o + ((h + n) & mask)
                        rts[e] = t
                        rv[e] = c
                        rm[r, _CNT] = n + 1
                    rw[j, _RHAS] = 0
                if cq:
                    rcur[j] = mid
                    rw[j, _RHAS] = 1
                cut = now - rw[j, _RW]
                ho = rm[2 * j, _OFF]
                hh = rm[2 * j, _HEAD]
                hn = rm[2 * j, _CNT]
                lo = rm[2 * j + 1, _OFF]
                lh = rm[2 * j + 1, _HEAD]
                ln = rm[2 * j + 1, _CNT]
                if (hn > 0 and rts[ho + hh] <= cut) or (ln > 0 and rts[lo + lh] <= cut):
                    mask = rm[2 * j, _CAP] - 1
                    while hn > 0 and rts[ho + hh] <= cut:
                        hh = (hh + 1) & mask
                        hn -= 1
                    mask = rm[2 * j + 1, _CAP] - 1
                    while ln > 0 and rts[lo + lh] <= cut:
                        lh = (lh + 1) & mask
                        ln -= 1
                    rm[2 * j, _HEAD] = hh
                    rm[2 * j, _CNT] = hn
                    rm[2 * j + 1, _HEAD] = lh
                    rm[2 * j + 1, _CNT] = ln
                elif not (cq or cg):
                    continue
                if rw[j, _RHAS] == 0:
                    if hn == 0:
                        x = _NAN
                    else:
                        mn = rv[lo + lh]
                        x = (rv[ho + hh] - mn) / mn * _BPS
                else:
                    c = rcur[j]
                    mx = rv[ho + hh] if hn > 0 and rv[ho + hh] > c else c
                    mn = rv[lo + lh] if ln > 0 and rv[lo + lh] < c else c
                    x = (mx - mn) / mn * _BPS
                wv[rbase + j] = x

            for j in range(nm):
                o = mm[j, _OFF]
                cap = mm[j, _CAP]
                mask = cap - 1
                h = mm[j, _HEAD]
                n = mm[j, _CNT]
                has = mm[j, _MHAS]
                live = mm[j, _MSEQ]
                nlo = mm[j, _MNLO]
                nhi = mm[j, _MNHI]
                slo = mm[j, _MSLO]
                shi = mm[j, _MSHI]
                blo = 8 * o  # the lower heap; the upper one follows at blo + 4 * cap
                bhi = blo + 4 * cap
                pend = False  # an entry to push: value px, number pn, onto the lower heap if plo
                plo = False
                px = pn = 0.0
                if (cq or cg) and has != 0:
                    mts[o + ((h + n - 1) & mask)] = t  # cur becomes a closed entry
                    has = 0
                if cq:
                    # Both tops are live (the last rebalance pruned them) and every live lower
                    # value is <= every live upper one.
                    if nlo > 0 and sbps <= -mh[blo]:
                        plo = True
                    elif nhi > 0 and sbps >= mh[bhi]:
                        plo = False
                    else:
                        plo = nlo <= nhi
                    e = o + ((h + n) & mask)
                    mv[e] = sbps
                    mside[e] = plo
                    pend = True
                    px = -sbps if plo else sbps
                    pn = float(live + n)
                    if plo:
                        nlo += 1
                    else:
                        nhi += 1
                    n += 1
                    has = 1
                cut = now - mm[j, _MW]
                closed = n - has
                if closed > 0 and mts[o + h] <= cut:
                    while closed > 0 and mts[o + h] <= cut:
                        if mside[o + h]:
                            nlo -= 1
                        else:
                            nhi -= 1
                        h = (h + 1) & mask
                        n -= 1
                        closed -= 1
                        live += 1
                elif not (cq or cg):
                    continue
                # Push the pending entry; pop gone tops; move a top across while the halves
                # are unbalanced (the moved entry is pushed on the next turn).
                hcap = 2 * cap
                while True:
                    if pend:
                        pend = False
                        b = blo if plo else bhi
                        hn = slo if plo else shi
                        if hn == hcap:  # full: keep the live entries, re-heaped in place
                            m = 0
                            for f in range(hn):
                                fn = mh[b + 2 * f + 1]
                                if fn >= live:
                                    _sift_up(mh, b, m, mh[b + 2 * f], fn)
                                    m += 1
                            hn = m
                        _sift_up(mh, b, hn, px, pn)
                        if plo:
                            slo = hn + 1
                        else:
                            shi = hn + 1
                    if slo > 0 and mh[blo + 1] < live:
                        from_lo = True
                    elif shi > 0 and mh[bhi + 1] < live:
                        from_lo = False
                    elif nlo > nhi + 1:
                        from_lo = True
                        nlo -= 1
                        nhi += 1
                        pend = True
                    elif nlo < nhi:
                        from_lo = False
                        nhi -= 1
                        nlo += 1
                        pend = True
                    else:
                        break
                    # Pop the top of one heap (taking it along if it moves across).
                    b = blo if from_lo else bhi
                    if pend:
                        plo = not from_lo
                        px = -mh[b]
                        pn = mh[b + 1]
                        mside[o + ((h + (int(pn) - live)) & mask)] = plo
                    hn = (slo if from_lo else shi) - 1
                    if hn > 0:
                        fx = mh[b + 2 * hn]
                        fn = mh[b + 2 * hn + 1]
                        q = 0
                        while True:
                            c0 = 4 * q + 1
                            if c0 >= hn:
                                break
                            cb = c0
                            cv = mh[b + 2 * c0]
                            for f in range(c0 + 1, min(c0 + 4, hn)):
                                if mh[b + 2 * f] < cv:
                                    cb = f
                                    cv = mh[b + 2 * f]
                            if cv < fx:
                                mh[b + 2 * q] = cv
                                mh[b + 2 * q + 1] = mh[b + 2 * cb + 1]
                                q = cb
                            else:
                                break
                        mh[b + 2 * q] = fx
                        mh[b + 2 * q + 1] = fn
                    if from_lo:
                        slo = hn
                    else:
                        shi = hn
                mm[j, _HEAD] = h
                mm[j, _CNT] = n
                mm[j, _MHAS] = has
                mm[j, _MSEQ] = live
                mm[j, _MNLO] = nlo
                mm[j, _MNHI] = nhi
                mm[j, _MSLO] = slo
                mm[j, _MSHI] = shi
                x = _NAN
                if has != 0:
                    c = mv[o + ((h + n - 1) & mask)]
                    lo_mid = -mh[blo]
                    if (nlo + nhi) & 1:
                        med = lo_mid
                    else:
                        med = (lo_mid + mh[bhi]) * 0.5
                    if med > 0.0:
                        x = c / med
                wv[mbase + j] = x

            # Ages are (now - last stamp) * 1e-6 after every applied event: 0.0 right after
            # a quote or trade, inf before the first.
            if si[_HAS_Q] != 0:
                wv[_QAGE] = (t - si[_QTS]) * 1e-6
            if si[_HAS_T] != 0:
                wv[_TAGE] = (t - si[_TTS]) * 1e-6

            # Derived metrics, in declaration order (a source is declared, so computed, first):
            # the first event of each sample period samples the source (if finite).
            for j in range(nd):
                if now < dm[j, _DNEXT]:
                    continue
                b = now // dm[j, _DSAMP]
                took = False
                x = 0.0
                if b != dm[j, _DBUCKET]:
                    dm[j, _DBUCKET] = b
                    x = wv[dm[j, _DSRC]]
                    took = -_INF < x and x < _INF
                if dm[j, _DISQ] != 0:
                    o = dm[j, _DOFF]
                    cap = dm[j, _DCAP]
                    h = dm[j, _DHEAD]
                    n = dm[j, _DCNT]
                    changed = took
                    if took:
                        e = o + (h + n) % cap
                        dts[e] = now
                        dval[e] = x
                        lo = 0  # insert after equal values (bisect.insort)
                        hi = n
                        while lo < hi:
                            mid_i = (lo + hi) // 2
                            if x < dsort[o + mid_i]:
                                hi = mid_i
                            else:
                                lo = mid_i + 1
                        for f in range(n, lo, -1):
                            dsort[o + f] = dsort[o + f - 1]
                        dsort[o + lo] = x
                        n += 1
                    cut = now - dm[j, _DW]
                    while n > 0 and dts[o + h] <= cut:
                        y = dval[o + h]
                        lo = 0  # remove the first equal value (bisect_left)
                        hi = n
                        while lo < hi:
                            mid_i = (lo + hi) // 2
                            if dsort[o + mid_i] < y:
                                lo = mid_i + 1
                            else:
                                hi = mid_i
                        for f in range(lo, n - 1):
                            dsort[o + f] = dsort[o + f + 1]
                        h = (h + 1) % cap
                        n -= 1
                        changed = True
                    dm[j, _DHEAD] = h
                    dm[j, _DCNT] = n
                    due = (dm[j, _DBUCKET] + 1) * dm[j, _DSAMP]
                    if n > 0 and dts[o + h] + dm[j, _DW] < due:
                        due = dts[o + h] + dm[j, _DW]
                    dm[j, _DNEXT] = due
                    if changed:
                        if n >= dm[j, _DMIN]:
                            # quantile_of_sorted, the same operations in the same order
                            hq = df[j, _DQUANT] * (n - 1)
                            iq = int(hq)
                            y = dsort[o + iq]
                            if iq + 1 < n:
                                fq = hq - iq
                                if fq > 0.0:
                                    y = y + (dsort[o + iq + 1] - y) * fq
                            wv[dbase + j] = y
                        else:
                            wv[dbase + j] = _NAN
                elif took:
                    if dm[j, _DN] == 0:
                        y = x
                    else:
                        y = df[j, _DEWMA]
                        y = y + df[j, _DALPHA] * (x - y)
                    df[j, _DEWMA] = y
                    dm[j, _DN] += 1
                    wv[dbase + j] = y if dm[j, _DN] >= dm[j, _DMIN] else _NAN
                if dm[j, _DISQ] == 0:
                    dm[j, _DNEXT] = (dm[j, _DBUCKET] + 1) * dm[j, _DSAMP]
        for col in range(ncol):
            out[i, col] = wv[colsrc[col]]
    return -1


# -- one event at a time (the live path) ------------------------------------------------------
#
# A call of a compiled function costs about 0.2 µs per array argument (numba checks the type of
# each one), so ``_run`` with its 41 arrays costs more than the metrics themselves when called
# for one event. ``_step`` takes the event's numbers and ONE int64 array, the address table:
# for each of ``_run``'s arrays (the event columns, ``out`` and the state, in ``_run``'s order)
# its address and shape. It rebuilds the arrays as views over those addresses (no copy, no
# reference counting) and calls ``_run`` on its one event, so the metric arithmetic is
# ``_run``'s. ``MetricKernel`` owns every array the table points at and rebuilds the table
# whenever it replaces one (a ring grows).


def _pointer_of(item):
    """An intrinsic turning an int64 address into a pointer to ``item`` values."""
    @numba.extending.intrinsic
    def as_pointer(typingctx, addr):
        sig = numba.types.CPointer(item)(numba.types.int64)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
        return sig, codegen
    return as_pointer


_I8 = _pointer_of(numba.types.int8)
_I64 = _pointer_of(numba.types.int64)
_F64 = _pointer_of(numba.types.float64)
_B = _pointer_of(numba.types.boolean)

# The table's slots, in ``_run``'s argument order after ``start``; each slot is three int64s:
# address, first and second dimension (0 for a 1-D array).
_TABLE_ORDER = ("kind", "ts", "bid", "bid_qty", "ask", "ask_qty", "price", "qty", "bim", "out",
                "si", "sf", "wv", "colsrc", "qm", "qf", "qts", "qr2", "qcr", "tm", "tf", "tts", "tq",
                "tn", "tb", "rm", "rw", "rcur", "rts", "rv", "mm", "mts", "mv", "mside", "mh", "dm", "df",
                "dts", "dval", "dsort", "need")

_TABLE_DTYPES = {name: np.dtype(dt) for names, dt in (
    (("kind",), np.int8), (("bim", "mside"), np.bool_),
    (("ts", "si", "colsrc", "qm", "qts", "qcr", "tm", "tts", "rm", "rw", "rts", "mm", "mts", "dm", "dts", "need"),
     np.int64),
    (("bid", "bid_qty", "ask", "ask_qty", "price", "qty", "out", "sf", "wv", "qf", "qr2", "tf", "tq", "tn", "tb",
      "rcur", "rv", "mv", "mh", "df", "dval", "dsort"), np.float64)) for name in names}


@numba.njit(cache=True, inline="always")
def _i64_1(tab, s):
    return numba.carray(_I64(tab[3 * s]), tab[3 * s + 1])


@numba.njit(cache=True, inline="always")
def _f64_1(tab, s):
    return numba.carray(_F64(tab[3 * s]), tab[3 * s + 1])


@numba.njit(cache=True, inline="always")
def _i64_2(tab, s):
    return numba.carray(_I64(tab[3 * s]), (tab[3 * s + 1], tab[3 * s + 2]))


@numba.njit(cache=True, inline="always")
def _f64_2(tab, s):
    return numba.carray(_F64(tab[3 * s]), (tab[3 * s + 1], tab[3 * s + 2]))


@numba.njit(cache=True)
def _step(tab, k, t, bid, bid_qty, ask, ask_qty, price, qty, bim):
    """Apply one event (its kind, stamp and numbers) to the state the table points at; row 0 of
    ``out`` holds the values after it. Returns ``_run``'s answer: -1 done, 0 a ring is full
    (nothing applied)."""
    kind = numba.carray(_I8(tab[0]), tab[1])
    ts = _i64_1(tab, 1)
    c_bid = _f64_1(tab, 2)
    c_bid_qty = _f64_1(tab, 3)
    c_ask = _f64_1(tab, 4)
    c_ask_qty = _f64_1(tab, 5)
    c_price = _f64_1(tab, 6)
    c_qty = _f64_1(tab, 7)
    c_bim = numba.carray(_B(tab[3 * 8]), tab[3 * 8 + 1])
    kind[0] = k
    ts[0] = t
    c_bid[0] = bid
    c_bid_qty[0] = bid_qty
    c_ask[0] = ask
    c_ask_qty[0] = ask_qty
    c_price[0] = price
    c_qty[0] = qty
    c_bim[0] = bim
    return _run(0, kind, ts, c_bid, c_bid_qty, c_ask, c_ask_qty, c_price, c_qty, c_bim, _f64_2(tab, 9),
                _i64_1(tab, 10), _f64_1(tab, 11), _f64_1(tab, 12), _i64_1(tab, 13),
                _i64_2(tab, 14), _f64_2(tab, 15), _i64_1(tab, 16), _f64_1(tab, 17), _i64_1(tab, 18),
                _i64_2(tab, 19), _f64_2(tab, 20), _i64_1(tab, 21), _f64_1(tab, 22), _f64_1(tab, 23),
                _f64_1(tab, 24),
                _i64_2(tab, 25), _i64_2(tab, 26), _f64_1(tab, 27), _i64_1(tab, 28), _f64_1(tab, 29),
                _i64_2(tab, 30), _i64_1(tab, 31), _f64_1(tab, 32), numba.carray(_B(tab[3 * 33]), tab[3 * 33 + 1]),
                _f64_1(tab, 34),
                _i64_2(tab, 35), _f64_2(tab, 36), _i64_1(tab, 37), _f64_1(tab, 38), _f64_1(tab, 39),
                _i64_1(tab, 40))


# -- Python side -----------------------------------------------------------------------------------

def _group(metric_set: MetricSet, kinds: tuple[str, ...]) -> list[int]:
    """Window lengths (ns) of the given kinds, in first-declared order: one window per
    (window_ns, family), as ``SymbolMetrics`` groups them."""
    out: list[int] = []
    for m in metric_set:
        if m.kind in kinds and m.window_ns not in out:
            out.append(m.window_ns)
    return out


def _pool(n_rings: int, extra_cols: int, dtypes: tuple) -> tuple[np.ndarray, list[np.ndarray]]:
    """Ring metadata (offset, capacity, head, count, extra columns) and empty ring columns."""
    meta = np.zeros((n_rings, 4 + extra_cols), dtype=np.int64)
    meta[:, _CAP] = INITIAL_CAPACITY
    meta[:, _OFF] = np.arange(n_rings, dtype=np.int64) * INITIAL_CAPACITY
    size = max(n_rings * INITIAL_CAPACITY, 1)
    return meta, [np.zeros(size, dtype=dt) for dt in dtypes]


def _grown(meta: np.ndarray, r: int, cols: list[np.ndarray]) -> list[np.ndarray]:
    """A pool's ring columns with ring r's capacity doubled and every ring unrolled to start
    at its new offset (``meta`` is updated)."""
    cap = meta[:, _CAP].copy()
    cap[r] *= 2
    off = np.zeros_like(cap)
    off[1:] = np.cumsum(cap)[:-1]
    new = [np.zeros(int(cap.sum()), dtype=a.dtype) for a in cols]
    for j in range(meta.shape[0]):
        o, c, h, n = (int(x) for x in meta[j, :4])
        src = o + ((h + np.arange(n)) & (c - 1))
        for a, b in zip(cols, new, strict=True):
            b[off[j]:off[j] + n] = a[src]
    meta[:, _OFF] = off
    meta[:, _CAP] = cap
    meta[:, _HEAD] = 0
    return new


def _heaps(mm: np.ndarray, old: np.ndarray | None = None, heaps: np.ndarray | None = None):
    """The median windows' heap pool for the layout in ``mm`` (8 floats per ring entry),
    holding the heaps of ``heaps`` laid out by ``old`` when given."""
    new = np.zeros(max(8 * int(mm[:, _CAP].sum()), 1), dtype=np.float64)
    if heaps is not None:
        for j in range(mm.shape[0]):
            o, c = 8 * int(old[j, _OFF]), 4 * int(old[j, _CAP])
            d, e = 8 * int(mm[j, _OFF]), 4 * int(mm[j, _CAP])
            m = 2 * int(old[j, _MSLO])
            new[d:d + m] = heaps[o:o + m]
            m = 2 * int(old[j, _MSHI])
            new[d + e:d + e + m] = heaps[o + c:o + c + m]
    return new


class _CompileNotice:
    """Says so on stderr when the first call compiles the kernel (seconds, once per install:
    numba caches the machine code next to this file) rather than loading it from the cache."""

    def __init__(self, fn=_run) -> None:
        self.fn = fn
        self.started = time.perf_counter()
        cache_file = getattr(getattr(fn, "_cache", None), "_cache_file", None)
        index = getattr(cache_file, "_index_path", None)
        self.announced = not (index and os.path.isfile(index))
        if self.announced:
            print("compiling the metric kernel (first replay only; cached for later runs)...", file=sys.stderr, flush=True)

    def done(self) -> None:
        recompiled = sum(self.fn.stats.cache_misses.values()) > 0
        if self.announced or recompiled:
            print(f"metric kernel {'compiled' if self.announced else 'recompiled (its source changed)'} in "
                  f"{time.perf_counter() - self.started:.1f} s", file=sys.stderr, flush=True)


class MetricKernel:
    """One symbol's rolling metrics, computed a block of events at a time.

    ``run`` continues from the state the previous call left; row i of its result is
    ``SymbolMetrics.values`` after event i, in the column order of ``names``.
    """

    def __init__(self, metric_set: MetricSet):
        self.metric_set = metric_set
        self.names: tuple[str, ...] = metric_set.names
        qw = _group(metric_set, _QUOTE_KINDS)
        tw = _group(metric_set, _TRADE_KINDS)
        rwin = _group(metric_set, ("mid_move",))
        mwin = _group(metric_set, ("spread_to_median",))
        derived = [m for m in metric_set if KINDS[m.kind].derived]
        tbase = _N_BOOK + 3 * len(qw)
        rbase = tbase + 4 * len(tw)
        mbase = rbase + len(rwin)
        dbase = mbase + len(mwin)
        colsrc = []
        for m in metric_set:
            if m.kind in _BOOK:
                colsrc.append(_BOOK[m.kind])
            elif m.kind in _QUOTE_KINDS:
                colsrc.append(_N_BOOK + 3 * qw.index(m.window_ns) + _QUOTE_KINDS.index(m.kind))
            elif m.kind in _TRADE_KINDS:
                colsrc.append(tbase + 4 * tw.index(m.window_ns) + _TRADE_KINDS.index(m.kind))
            elif m.kind == "mid_move":
                colsrc.append(rbase + rwin.index(m.window_ns))
            elif m.kind == "spread_to_median":
                colsrc.append(mbase + mwin.index(m.window_ns))
            elif KINDS[m.kind].derived:
                colsrc.append(dbase + derived.index(m))
            else:
                raise ValueError(f"metric {m.name!r}: no kernel for kind {m.kind!r}")
        self._colsrc = np.array(colsrc, dtype=np.int64)

        # Every slot starts at its kind's empty value, like SymbolMetrics.values.
        wv = np.zeros(dbase + len(derived), dtype=np.float64)
        for kind, s in _BOOK.items():
            wv[s] = KINDS[kind].empty
        for j in range(len(tw)):
            wv[tbase + 4 * j + 3] = KINDS["buy_ratio"].empty
        wv[rbase:] = np.nan  # mid_move, spread_to_median and the derived kinds
        self._wv = wv
        self._init_derived(metric_set, derived, colsrc)

        self._si = np.zeros(12, dtype=np.int64)
        self._si[_NOW] = _NO_TIME
        self._si[_NEED_R2] = any(m.kind == "realized_vol" for m in metric_set)
        self._sf = np.zeros(1, dtype=np.float64)
        self._need = np.zeros(2, dtype=np.int64)

        self._qm, self._qcols = _pool(len(qw), 3, (np.int64, np.float64, np.int64))
        self._qm[:, _QW] = qw
        self._qf = np.zeros((len(qw), 2), dtype=np.float64)
        self._qf[:, _QWS] = [w / _NS_PER_S for w in qw]
        self._tm, self._tcols = _pool(len(tw), 1, (np.int64, np.float64, np.float64, np.float64))
        self._tm[:, _TW] = tw
        self._tf = np.zeros((len(tw), 4), dtype=np.float64)
        self._tf[:, _TWS] = [w / _NS_PER_S for w in tw]
        self._rm, self._rcols = _pool(2 * len(rwin), 0, (np.int64, np.float64))
        self._rw = np.zeros((len(rwin), 2), dtype=np.int64)
        self._rw[:, _RW] = rwin
        self._rcur = np.zeros(len(rwin), dtype=np.float64)
        self._mm, self._mcols = _pool(len(mwin), 7, (np.int64, np.float64, np.bool_))
        self._mm[:, _MW] = mwin
        self._mh = _heaps(self._mm)

        # One event's columns and its row of values, for ``step``; the address table is built on
        # the first ``step`` and after every growth.
        self._one = {"kind": np.zeros(1, np.int8), "ts": np.zeros(1, np.int64),
                     **{c: np.zeros(1, np.float64) for c in ("bid", "bid_qty", "ask", "ask_qty", "price", "qty")},
                     "bim": np.zeros(1, np.bool_), "out": np.zeros((1, len(self.names)), np.float64)}
        self.row = self._one["out"][0]
        self._table: np.ndarray | None = None

    def last_stamps(self) -> tuple[int | None, int | None]:
        """As ``SymbolMetrics.last_stamps``: the last valid quote's and trade's times."""
        si = self._si
        return (int(si[_QTS]) if si[_HAS_Q] else None, int(si[_TTS]) if si[_HAS_T] else None)

    # -- counters (same meaning as SymbolMetrics) ------------------------------------------

    @property
    def late_events(self) -> int:
        return int(self._si[_LATE])

    @property
    def invalid_events(self) -> int:
        return int(self._si[_INVALID])

    @property
    def gaps(self) -> int:
        return int(self._si[_GAPS])

    @property
    def quotes(self) -> int:
        return int(self._si[_QUOTES])

    @property
    def trades(self) -> int:
        return int(self._si[_TRADES])

    # -- events ------------------------------------------------------------------------------

    def run(self, kind, ts, bid, bid_qty, ask, ask_qty, price, qty, buyer_is_maker) -> np.ndarray:
        """Apply n events in order (columns of length n) and return float64[n, len(names)]:
        row i holds the metric values after event i."""
        # Contiguous, writeable columns of the exact dtypes: one compiled signature for all.
        kind = np.require(kind, np.int8, "CW")
        ts = np.require(ts, np.int64, "CW")
        bid, bid_qty, ask, ask_qty, price, qty = (
            np.require(a, np.float64, "CW") for a in (bid, bid_qty, ask, ask_qty, price, qty))
        bim = np.require(buyer_is_maker, np.bool_, "CW")
        out = np.empty((len(kind), len(self.names)), dtype=np.float64)
        start = 0
        notice = _CompileNotice() if not _run.signatures else None
        while True:
            start = _run(start, kind, ts, bid, bid_qty, ask, ask_qty, price, qty, bim, out,
                         self._si, self._sf, self._wv, self._colsrc,
                         self._qm, self._qf, *self._qcols, self._tm, self._tf, *self._tcols,
                         self._rm, self._rw, self._rcur, *self._rcols,
                         self._mm, *self._mcols, self._mh,
                         self._dm, self._df, *self._dcols, self._need)
            if notice is not None:
                notice.done()
                notice = None
            if start < 0:
                return out
            self._grow(int(self._need[0]), int(self._need[1]))

    def step(self, kind: int, ts: int, bid: float, bid_qty: float, ask: float, ask_qty: float, price: float,
             qty: float, buyer_is_maker: bool) -> np.ndarray:
        """Apply one event and return ``row``: the metric values after it, in the order of
        ``names`` (the same array every time, overwritten by the next event). The same state as
        ``run``: blocks and single events may follow each other."""
        notice = _CompileNotice(_step) if not _step.signatures else None
        while _step(self.table(), kind, ts, bid, bid_qty, ask, ask_qty, price, qty, buyer_is_maker) >= 0:
            self._grow(int(self._need[0]), int(self._need[1]))
        if notice is not None:
            notice.done()
        return self.row

    def __getstate__(self) -> dict:
        """A copy (deepcopy, pickle) gets arrays of its own: its address table is built again, and
        ``row`` is a view of its own ``out``."""
        state = dict(self.__dict__)
        state["_table"] = None
        del state["row"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.row = self._one["out"][0]

    def table(self) -> np.ndarray:
        """The address table of the current state for ``_step`` (valid until the next growth;
        ``step`` and ``run`` grow rings)."""
        if self._table is None:
            self._table = self._address_table()
        return self._table

    def _address_table(self) -> np.ndarray:
        """``_step``'s table: the address and shape of each array of ``_run`` (``_TABLE_ORDER``).
        Every array it points at is held by this object, and replaced only by ``_grow``, which
        builds the table again."""
        q, t, r, m, d = self._qcols, self._tcols, self._rcols, self._mcols, self._dcols
        arrays = {**self._one, "si": self._si, "sf": self._sf, "wv": self._wv, "colsrc": self._colsrc,
                  "qm": self._qm, "qf": self._qf, "qts": q[0], "qr2": q[1], "qcr": q[2],
                  "tm": self._tm, "tf": self._tf, "tts": t[0], "tq": t[1], "tn": t[2], "tb": t[3],
                  "rm": self._rm, "rw": self._rw, "rcur": self._rcur, "rts": r[0], "rv": r[1],
                  "mm": self._mm, "mts": m[0], "mv": m[1], "mside": m[2], "mh": self._mh,
                  "dm": self._dm, "df": self._df, "dts": d[0], "dval": d[1], "dsort": d[2], "need": self._need}
        table = np.zeros(3 * len(_TABLE_ORDER), dtype=np.int64)
        for s, name in enumerate(_TABLE_ORDER):
            a = arrays[name]
            if not (a.flags.c_contiguous and a.flags.writeable and a.dtype == _TABLE_DTYPES[name]):
                raise TypeError(f"metric kernel: {name} is not a contiguous {_TABLE_DTYPES[name]} array")
            table[3 * s] = a.ctypes.data
            table[3 * s + 1] = a.shape[0]
            table[3 * s + 2] = a.shape[1] if a.ndim == 2 else 0
        return table

    def _init_derived(self, metric_set: MetricSet, derived: list, colsrc: list[int]) -> None:
        """The derived metrics' state; a rolling quantile's ring and sorted copy hold as many
        samples as its window can (one per sample period), so they never grow."""
        names = list(metric_set.names)
        dm = np.zeros((len(derived), 12), dtype=np.int64)
        df = np.zeros((len(derived), 3), dtype=np.float64)
        off = 0
        for j, m in enumerate(derived):
            dm[j, _DISQ] = m.kind == "rolling_quantile"
            dm[j, _DSRC] = colsrc[names.index(m.of)]
            dm[j, _DSAMP] = m.sample_ns
            dm[j, _DW] = m.window_ns
            dm[j, _DMIN] = m.min_samples
            dm[j, _DBUCKET] = -(1 << 62)
            dm[j, _DNEXT] = -(1 << 63)
            cap = m.window_ns // m.sample_ns + 3 if dm[j, _DISQ] else 0
            dm[j, _DOFF] = off
            dm[j, _DCAP] = cap
            off += cap
            df[j, _DQUANT] = m.quantile or 0.0
            df[j, _DALPHA] = m.alpha
        self._dm, self._df = dm, df
        size = max(off, 1)
        self._dcols = [np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.float64),
                       np.zeros(size, dtype=np.float64)]

    def _grow(self, family: int, ring: int) -> None:
        if family == _FAM_Q:
            self._qcols = _grown(self._qm, ring, self._qcols)
        elif family == _FAM_T:
            self._tcols = _grown(self._tm, ring, self._tcols)
        elif family == _FAM_R:
            self._rcols = _grown(self._rm, ring, self._rcols)
        else:
            old = self._mm.copy()
            self._mcols = _grown(self._mm, ring, self._mcols)
            self._mh = _heaps(self._mm, old, self._mh)
        if self._table is not None:
            self._table = self._address_table()

    def values_now(self) -> dict[str, float]:
        """The current values (after the last event), like ``SymbolMetrics.values``."""
        wv = self._wv
        return {n: float(wv[s]) for n, s in zip(self.names, self._colsrc, strict=True)}

    # -- introspection -------------------------------------------------------------------------

    def buffered(self) -> dict[str, list[int]]:
        """Entries held by each ring, per family: quote, trade, range (two deques per window)
        and median windows."""
        return {f: [int(x) for x in meta[:, _CNT]] for f, meta in self._metas().items()}

    def capacities(self) -> dict[str, list[int]]:
        """Entries allocated for each ring, in the same layout as ``buffered``: at most twice
        the most the ring ever held, and at least ``INITIAL_CAPACITY``. (A median window's
        heaps take four times its ring's capacity: two heaps of two floats per entry.)"""
        return {f: [int(x) for x in meta[:, _CAP]] for f, meta in self._metas().items()}

    def _metas(self) -> dict[str, np.ndarray]:
        return {"quote": self._qm, "trade": self._tm, "range": self._rm, "median": self._mm}


class KernelMetrics:
    """``SymbolMetrics``' interface, computed by the compiled kernel one event at a time: the
    live path's metrics when the kernel has every kind of the metric set (``supports``).

    ``values`` holds every metric of the set (the same dict for the object's whole life, in the
    set's order); the kernel writes the rolling kinds after each event, the book's kinds are
    ``BookMetrics``'. Counters, ``now_ns`` and ``last_stamps`` mean what they mean on
    ``SymbolMetrics``; ``SymbolMetrics`` stays the reference it is tested against.
    """

    engine = "compiled kernel"

    def __init__(self, metric_set: MetricSet, symbol: str = ""):
        self.metric_set = metric_set
        self.symbol = symbol
        self.values: dict[str, float] = metric_set.initial_values()
        self._kernel = MetricKernel(metric_set.rolling)  # private: its table must stay ours
        self._names = self._kernel.names
        self._row = self._kernel.row
        self._table = self._kernel.table()
        self._step = _step if _step.signatures else self._first_step

    @staticmethod
    def supports(metric_set: MetricSet) -> bool:
        """Whether the kernel computes every rolling kind of ``metric_set``."""
        rolling = metric_set.rolling
        names = set(rolling.names)
        return all(m.kind in _BOOK or m.kind in _QUOTE_KINDS or m.kind in _TRADE_KINDS
                   or m.kind in ("mid_move", "spread_to_median")
                   or (KINDS[m.kind].derived and m.of in names)  # a baseline of a book metric: no
                   for m in rolling)

    # -- events ---------------------------------------------------------------------------

    def on_event(self, ev) -> None:
        """Any market event: Quote, Trade, FeedEvent or Tick."""
        t = type(ev)
        if t is Quote:
            self.on_quote(ev)
        elif t is Trade:
            self.on_trade(ev)
        elif t is Tick:
            self.on_tick(ev.ts_ns)
        elif t is FeedEvent:
            self.on_feed(ev)
        else:
            raise TypeError(f"not a market event: {ev!r}")

    def __getstate__(self) -> dict:
        """A copy has a kernel of its own (see ``MetricKernel.__getstate__``): its table and row
        are taken from that one."""
        state = dict(self.__dict__)
        for name in ("_table", "_row", "_step"):
            del state[name]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._row = self._kernel.row
        self._table = self._kernel.table()
        self._step = _step if _step.signatures else self._first_step

    def warm_up(self) -> None:
        """Load the compiled step now (or compile it, the first time after an install) instead of
        on the first event: about half a second."""
        if self._step is not _step:
            self._first_step(self._table, TICK, _NO_TIME, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False)  # a no-op tick

    # Each calls ``_step`` itself (a Python wrapper costs as much again as the call): -1 means
    # applied; else a ring was full and nothing was applied, ``_room`` grows it and retries.

    def on_quote(self, q: Quote) -> None:
        if self._step(self._table, QUOTE, q.ts_ns, q.bid, q.bid_qty, q.ask, q.ask_qty, 0.0, 0.0, False) >= 0:
            self._room(QUOTE, q.ts_ns, q.bid, q.bid_qty, q.ask, q.ask_qty, 0.0, 0.0, False)
        self.values.update(zip(self._names, self._row.tolist(), strict=True))

    def on_trade(self, t: Trade) -> None:
        if self._step(self._table, TRADE, t.ts_ns, 0.0, 0.0, 0.0, 0.0, t.price, t.qty, t.buyer_is_maker) >= 0:
            self._room(TRADE, t.ts_ns, 0.0, 0.0, 0.0, 0.0, t.price, t.qty, t.buyer_is_maker)
        self.values.update(zip(self._names, self._row.tolist(), strict=True))

    def on_tick(self, ts_ns: int) -> None:
        """Advance event time to ``ts_ns`` (no-op if not later than now): evict, age."""
        self._apply(TICK, ts_ns)

    def on_feed(self, ev: FeedEvent) -> None:
        if ev.symbol and self.symbol and ev.symbol != self.symbol:
            return
        self._apply(GAP if ev.kind in INVALIDATING_FEED_KINDS else FEED, ev.ts_ns)

    def _apply(self, kind: int, ts: int) -> None:
        if self._step(self._table, kind, ts, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False) >= 0:
            self._room(kind, ts, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False)
        self.values.update(zip(self._names, self._row.tolist(), strict=True))

    def _room(self, *event) -> None:
        """The event found a ring full: apply it through the kernel's ``step``, which grows the
        ring, and take its new address table."""
        self._kernel.step(*event)
        self._table = self._kernel.table()

    def _first_step(self, *args) -> int:
        """The first call in this process: the kernel's ``step`` says so when it compiles."""
        self._kernel.step(*args[1:])
        self._step = _step
        return -1

    # -- counters and clock (read from the kernel's state; the replay fast path sets them
    # when it catches a pipeline up) ---------------------------------------------------------

    @property
    def now_ns(self) -> int | None:
        """Event time (the largest stamp applied), None before the first event."""
        now = int(self._kernel._si[_NOW])
        return None if now == _NO_TIME else now

    @now_ns.setter
    def now_ns(self, ts: int | None) -> None:
        self._kernel._si[_NOW] = _NO_TIME if ts is None else ts

    def last_stamps(self) -> tuple[int | None, int | None]:
        return self._kernel.last_stamps()

    def stats(self) -> dict[str, int]:
        return {"quotes": self.quotes, "trades": self.trades, "late_events": self.late_events,
                "invalid_events": self.invalid_events, "gaps": self.gaps}


def _counter(slot: int) -> property:
    def get(self) -> int:
        return int(self._kernel._si[slot])

    def put(self, n: int) -> None:
        self._kernel._si[slot] = n
    return property(get, put)


for _name, _slot in (("late_events", _LATE), ("invalid_events", _INVALID), ("gaps", _GAPS),
                     ("quotes", _QUOTES), ("trades", _TRADES)):
    setattr(KernelMetrics, _name, _counter(_slot))


def live_metrics(metric_set: MetricSet, symbol: str = "") -> KernelMetrics | SymbolMetrics:
    """One symbol's metrics for the event-by-event path: the compiled kernel when it has every
    kind of the set, else the reference engine (``.engine`` says which)."""
    if KernelMetrics.supports(metric_set):
        return KernelMetrics(metric_set, symbol)
    return SymbolMetrics(metric_set, symbol)
