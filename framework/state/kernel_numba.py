"""The metric kernel's compiled functions: ``_run`` applies a block of events, ``_step`` one
event through an address table. This is the only place of their arithmetic: numba compiles it
on first use (cached beside this file), and ``kernel_aot`` compiles the same functions ahead of
time into an extension module that a process loads without importing numba. The arrays they
work on, and what they mean, are ``kernel``'s (``MetricKernel``).
"""

from __future__ import annotations

import math

import numba
import numba.extending

from .kernel_layout import (
    _ARMED,
    _CAP,
    _CNT,
    _DALPHA,
    _DBUCKET,
    _DCAP,
    _DCNT,
    _DEWMA,
    _DHEAD,
    _DISQ,
    _DMIN,
    _DN,
    _DNEXT,
    _DOFF,
    _DQUANT,
    _DSAMP,
    _DSRC,
    _DW,
    _FAM_M,
    _FAM_Q,
    _FAM_R,
    _FAM_T,
    _GAPS,
    _HAS_PREV,
    _HAS_Q,
    _HAS_T,
    _HEAD,
    _IMB,
    _INVALID,
    _LATE,
    _MHAS,
    _MICRO,
    _MID,
    _MNHI,
    _MNLO,
    _MSEQ,
    _MSHI,
    _MSLO,
    _MW,
    _N_BOOK,
    _NEED_R2,
    _NOW,
    _OFF,
    _PREV,
    _QAGE,
    _QCR,
    _QNZ,
    _QR2,
    _QTS,
    _QUOTES,
    _QW,
    _QWS,
    _RHAS,
    _RW,
    _SBPS,
    _SPREAD,
    _TAGE,
    _TBUY,
    _TNOT,
    _TQTY,
    _TRADES,
    _TTS,
    _TW,
    _TWS,
    GAP,
    QUOTE,
    TICK,
    TRADE,
)

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
    ``out`` holds the values after it. Returns 0 when a ring is full (nothing applied), else
    ``-1 - armed``: the watch slots still armed after the event (``_watch``)."""
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
    r = _run(0, kind, ts, c_bid, c_bid_qty, c_ask, c_ask_qty, c_price, c_qty, c_bim, _f64_2(tab, 9),
                _i64_1(tab, 10), _f64_1(tab, 11), _f64_1(tab, 12), _i64_1(tab, 13),
                _i64_2(tab, 14), _f64_2(tab, 15), _i64_1(tab, 16), _f64_1(tab, 17), _i64_1(tab, 18),
                _i64_2(tab, 19), _f64_2(tab, 20), _i64_1(tab, 21), _f64_1(tab, 22), _f64_1(tab, 23),
                _f64_1(tab, 24),
                _i64_2(tab, 25), _i64_2(tab, 26), _f64_1(tab, 27), _i64_1(tab, 28), _f64_1(tab, 29),
                _i64_2(tab, 30), _i64_1(tab, 31), _f64_1(tab, 32), numba.carray(_B(tab[3 * 33]), tab[3 * 33 + 1]),
                _f64_1(tab, 34),
                _i64_2(tab, 35), _f64_2(tab, 36), _i64_1(tab, 37), _f64_1(tab, 38), _f64_1(tab, 39),
                _i64_1(tab, 40))
    if r >= 0:
        return r
    si = _i64_1(tab, 10)
    armed = si[_ARMED]
    if armed != 0:
        armed = _watch(armed, _f64_2(tab, 9), _i64_1(tab, 41), _i64_2(tab, 42), _f64_2(tab, 43), _f64_2(tab, 44))
        si[_ARMED] = armed
    return -1 - armed


@numba.njit(cache=True, inline="always")
def _watch(armed, out, wn, wcol, wlo, whi):
    """The armed slots whose cells still hold every value of ``out``'s row 0: slot s holds
    ``wn[s]`` cells, value column ``wcol[s, j]`` in ``[wlo[s, j], whi[s, j]]`` (NaN bounds: the
    NaN cell). A slot with a value outside a cell is disarmed."""
    for s in range(wn.shape[0]):
        bit = numba.int64(1) << s
        if armed & bit:
            for j in range(wn[s]):
                v = out[0, wcol[s, j]]
                lo = wlo[s, j]
                if not (lo <= v and v <= whi[s, j]) and (v == v or lo == lo):
                    armed &= ~bit
                    break
    return armed

