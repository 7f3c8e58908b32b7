"""Live results: queries that re-run when the tables they read change, or on an interval.

``Live`` (live.py) listens to the Session's change bus (``changed("data:<table>")``) and
re-runs what reads the table, at most one run in flight per watch, bursts coalesced into
one more run. ``tables.py`` finds the tables a query reads (sqlglot). The widgets that show
a live result are views (``widgets/live.py``); alerts (``alerts/``) watch through here too.
"""
