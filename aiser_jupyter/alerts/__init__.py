"""Alerts: a number watched (SQL, a semantic member, a Cube query), a condition over it, and
where to tell when it becomes true (a webhook, an email, the notebook).

``Alerts`` (alerts.py) makes and checks them, on a schedule or when the tables they read
change (through the Live part); ``condition.py`` reads a condition safely (sqlglot, no
eval); ``notify.py`` delivers; ``store.py`` keeps their state and outbox in SQLite.
"""
