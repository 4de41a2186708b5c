"""A live dashboard: a local web page showing every layer of a session as its log is written.

``board``: the audit records folded into what the page shows (states, decision, charts'
points, transitions, orders, PnL, alerts, feed), as a snapshot or as the delta since the last
send. ``layout``: what the page needs from the specs (diagrams, colours, guard thresholds).
``history``: a finished run's board at any time (the time slider). ``server``: HTTP and
websockets on one port, in a thread of its own, pushing aggregated updates a few times a second.
``commands``: ``execlab dashboard`` and the ``--dashboard`` flags of ``execlab run``;
``measure``: ``execlab dashboard-bench``. The page itself is ``static/`` (package data).
"""
