"""The metric kernel's layout, shared by its compiled functions (``kernel_numba``) and the
Python side that owns their arrays (``kernel``): event kinds, value slots, and the columns of
its state arrays. A module of its own, without numba, so that a process running the
ahead-of-time compiled kernel never imports numba.
"""

QUOTE, TRADE, TICK, GAP, FEED = 0, 1, 2, 3, 4  # event kinds (int8 column)

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
    _NEED_R2, _ARMED = range(13)
N_SI = 13
# _ARMED: the watch slots (bit s: slot s) whose cells every value has stayed in since they
# were armed (``WatchSlot`` in kernel.py; checked by ``_step`` only, after each event)
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
