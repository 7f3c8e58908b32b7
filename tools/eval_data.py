"""Deterministic datasets for the question-answering evaluation (tests/answers/).

Two businesses of a different shape from the retail sample:

- ``subscriptions``: a SaaS company (accounts, plans, subscriptions, invoices),
  2022-01-01 .. 2025-06-30 -- the data ends mid-year, not at a year boundary.
- ``logistics``: a shipping operation (warehouses, carriers, shipments, packages),
  2023-03-01 .. 2024-10-31.

Same seed, same tables. ``load(session, name)`` registers the tables of 'retail',
'subscriptions' or 'logistics' in a Session's embedded DuckDB and loads the
matching Cube model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
MODELS = {
    "retail": ROOT / "examples" / "model" / "retail.yml",
    "subscriptions": ROOT / "tests" / "answers" / "models" / "subscriptions.yml",
    "logistics": ROOT / "tests" / "answers" / "models" / "logistics.yml",
}

# --------------------------------------------------------------------------- subscriptions

SUB_START = np.datetime64("2022-01-01")
SUB_END = np.datetime64("2025-06-30")  # inclusive: the last day with data
N_ACCOUNTS = 2400

INDUSTRIES = {
    "Software": 0.22,
    "Finance": 0.14,
    "Healthcare": 0.12,
    "Retail": 0.13,
    "Manufacturing": 0.12,
    "Education": 0.09,
    "Media": 0.08,
    "Logistics": 0.10,
}
SUB_COUNTRIES = {"US": 0.42, "GB": 0.16, "DE": 0.13, "FR": 0.1, "CA": 0.11, "AU": 0.08}
SIZE_BANDS = {"smb": 0.6, "mid-market": 0.28, "enterprise": 0.12}
SEATS_MEAN = {"smb": 4.0, "mid-market": 22.0, "enterprise": 120.0}
CHANNELS = {"direct": 0.35, "partner": 0.2, "self-serve": 0.45}
# plan_name -> (monthly price per seat, probability per size band smb/mid/ent)
PLANS = {
    "Starter": (12.0, (0.55, 0.15, 0.02)),
    "Pro": (29.0, (0.33, 0.45, 0.18)),
    "Business": (49.0, (0.11, 0.32, 0.40)),
    "Enterprise": (89.0, (0.01, 0.08, 0.40)),
}
ANNUAL_SHARE = {"smb": 0.25, "mid-market": 0.5, "enterprise": 0.75}
ANNUAL_DISCOUNT = 0.8  # annual plans cost 80% of twelve monthly payments
MONTHLY_CHURN = {"smb": 0.035, "mid-market": 0.018, "enterprise": 0.008}
COMPANY_PREFIX = (
    "Acme",
    "Blue",
    "Bright",
    "Cedar",
    "Delta",
    "Echo",
    "Fern",
    "Granite",
    "Harbor",
    "Iron",
    "Juniper",
    "Kite",
    "Lumen",
    "Maple",
    "Nimbus",
    "Orbit",
    "Pine",
    "Quartz",
    "River",
    "Summit",
    "Tidal",
    "Umber",
    "Vertex",
    "Willow",
    "Zephyr",
    "Atlas",
    "Beacon",
    "Cobalt",
    "Drift",
    "Ember",
)
COMPANY_SUFFIX = (
    "Labs",
    "Systems",
    "Holdings",
    "Partners",
    "Analytics",
    "Group",
    "Works",
    "Health",
    "Capital",
    "Logistics",
    "Media",
    "Foods",
    "Robotics",
    "Studios",
    "Energy",
    "Learning",
)
COMPANY_FORM = ("Inc", "Ltd", "GmbH", "LLC", "SA", "Co")


def _pick(rng: np.random.Generator, weights: dict[str, float], size: int) -> np.ndarray:
    p = np.array(list(weights.values()), dtype=float)
    return rng.choice(np.array(list(weights)), size=size, p=p / p.sum())


def _growth_days(
    rng: np.random.Generator, start: np.datetime64, end: np.datetime64, n: int, growth: float
) -> np.ndarray:
    """``n`` sorted days in [start, end] whose density grows linearly by ``growth``."""
    span = int((end - start).astype(int)) + 1
    weights = 1 + growth * np.linspace(0, 1, span)
    days = rng.choice(span, size=n, p=weights / weights.sum())
    return np.sort(start + days.astype("timedelta64[D]"))


def _timestamps(
    rng: np.random.Generator, days: np.ndarray, start_hour: int = 7, end_hour: int = 20
) -> np.ndarray:
    seconds = rng.integers(start_hour * 3600, end_hour * 3600, len(days))
    return days.astype("datetime64[s]") + seconds.astype("timedelta64[s]")


def _accounts(rng: np.random.Generator) -> pa.Table:
    created = _timestamps(rng, _growth_days(rng, SUB_START, SUB_END - 20, N_ACCOUNTS, 1.5))
    names = set()
    company = []
    for _ in range(N_ACCOUNTS):
        while True:
            name = (
                f"{rng.choice(COMPANY_PREFIX)} {rng.choice(COMPANY_SUFFIX)} "
                f"{rng.choice(COMPANY_FORM)}"
            )
            if name in names:
                name = f"{name} {int(rng.integers(2, 99))}"
            if name not in names:
                break
        names.add(name)
        company.append(name)
    size = _pick(rng, SIZE_BANDS, N_ACCOUNTS)
    return pa.table(
        {
            "account_id": np.arange(1, N_ACCOUNTS + 1),
            "company_name": company,
            "industry": _pick(rng, INDUSTRIES, N_ACCOUNTS),
            "country": _pick(rng, SUB_COUNTRIES, N_ACCOUNTS),
            "size_band": size,
            "created_at": pa.array(created, pa.timestamp("us")),
        }
    )


def _plans() -> pa.Table:
    rows: dict[str, list[Any]] = {
        "plan_id": [],
        "plan_name": [],
        "billing_period": [],
        "list_price": [],
    }
    plan_id = 1
    for name, (price, _) in PLANS.items():
        for period in ("monthly", "annual"):
            rows["plan_id"].append(plan_id)
            rows["plan_name"].append(name)
            rows["billing_period"].append(period)
            rows["list_price"].append(
                price if period == "monthly" else round(price * 12 * ANNUAL_DISCOUNT, 2)
            )
            plan_id += 1
    return pa.table(rows)


def _subscriptions(rng: np.random.Generator, accounts: pa.Table) -> pa.Table:
    size = accounts["size_band"].to_numpy(zero_copy_only=False)
    created = accounts["created_at"].to_numpy().astype("datetime64[D]")
    end_day = SUB_END
    plan_names = list(PLANS)
    rows: dict[str, list[Any]] = {
        k: []
        for k in ("account_id", "plan_id", "started_at", "cancelled_at", "mrr", "seats", "channel")
    }
    band_index = {"smb": 0, "mid-market": 1, "enterprise": 2}
    for i in range(N_ACCOUNTS):
        band = size[i]
        start = created[i] + int(rng.integers(0, 15))
        channel = _pick(
            rng,
            CHANNELS
            if band != "enterprise"
            else {"direct": 0.7, "partner": 0.25, "self-serve": 0.05},
            1,
        )[0]
        n_subs = 1 + rng.poisson(0.35 if band == "smb" else 0.6)
        for _ in range(n_subs):
            if start > end_day:
                break
            p = np.array([PLANS[n][1][band_index[band]] for n in plan_names])
            plan = int(rng.choice(len(plan_names), p=p / p.sum()))
            annual = rng.random() < ANNUAL_SHARE[band]
            plan_id = plan * 2 + (2 if annual else 1)
            seats = max(1, int(rng.poisson(SEATS_MEAN[band])))
            # churn got worse for small businesses in 2024
            churn = (
                MONTHLY_CHURN[band]
                * (1.6 if band == "smb" and start >= np.datetime64("2024-01-01") else 1.0)
                * (0.6 if annual else 1.0)
            )
            months = rng.geometric(churn)
            cancel = start + int(months * 30.4 + rng.integers(-5, 5))
            discount = 1 - rng.choice([0.0, 0.0, 0.1, 0.15, 0.2]) * (band != "smb")
            price = PLANS[plan_names[plan]][0] * (ANNUAL_DISCOUNT if annual else 1.0)
            rows["account_id"].append(i + 1)
            rows["plan_id"].append(plan_id)
            rows["started_at"].append(start)
            rows["cancelled_at"].append(cancel if cancel <= end_day else None)
            rows["mrr"].append(round(price * seats * discount, 2))
            rows["seats"].append(seats)
            rows["channel"].append(channel)
            # an upgrade or a second product starts some time later
            start = start + int(rng.integers(60, 500))
    n = len(rows["account_id"])
    started = np.array(rows["started_at"], dtype="datetime64[D]")
    started_ts = _timestamps(rng, started, 8, 18)
    no_cancel = np.array([c is None for c in rows["cancelled_at"]])
    cancel_day = np.array(
        [started[0] if c is None else c for c in rows["cancelled_at"]], dtype="datetime64[D]"
    )
    cancelled = cancel_day.astype("datetime64[s]") + (rng.integers(9, 17, n) * 3600).astype(
        "timedelta64[s]"
    )
    order = np.argsort(started_ts, kind="stable")
    return pa.table(
        {
            "subscription_id": np.arange(1, n + 1),
            "account_id": np.array(rows["account_id"])[order],
            "plan_id": np.array(rows["plan_id"])[order],
            "started_at": pa.array(started_ts[order], pa.timestamp("us")),
            "cancelled_at": pa.array(cancelled[order], pa.timestamp("us"), mask=no_cancel[order]),
            "is_active": pa.array(no_cancel[order], pa.bool_()),
            "mrr": np.array(rows["mrr"])[order],
            "seats": np.array(rows["seats"])[order],
            "channel": np.array(rows["channel"])[order],
        }
    )


def _invoices(rng: np.random.Generator, subscriptions: pa.Table, plans: pa.Table) -> pa.Table:
    annual_plan = {
        pid: period == "annual"
        for pid, period in zip(
            plans["plan_id"].to_pylist(), plans["billing_period"].to_pylist(), strict=True
        )
    }
    rows: dict[str, list[Any]] = {k: [] for k in ("subscription_id", "issued_at", "amount")}
    for sid, pid, start, cancel, mrr in zip(
        subscriptions["subscription_id"].to_pylist(),
        subscriptions["plan_id"].to_pylist(),
        subscriptions["started_at"].to_numpy().astype("datetime64[D]"),
        subscriptions["cancelled_at"].to_pylist(),
        subscriptions["mrr"].to_pylist(),
        strict=True,
    ):
        stop = SUB_END if cancel is None else np.datetime64(cancel.date())
        step = 12 if annual_plan[pid] else 1
        month = start.astype("datetime64[M]")
        day = int((start - month.astype("datetime64[D]")).astype(int))
        k = 0
        while True:
            m = month + k * step
            issued = m.astype("datetime64[D]") + min(day, 27)
            if issued > stop:
                break
            amount = mrr * step
            if rng.random() < 0.06:  # usage overage or a proration
                amount *= rng.uniform(1.05, 1.4)
            rows["subscription_id"].append(sid)
            rows["issued_at"].append(issued)
            rows["amount"].append(round(float(amount), 2))
            k += 1
    issued = np.array(rows["issued_at"], dtype="datetime64[D]")
    order = np.argsort(issued, kind="stable")
    issued = issued[order]
    n = len(issued)
    age = (SUB_END - issued).astype(int)
    u = rng.random(n)
    status = np.where(u < 0.015, "void", "paid").astype(object)
    pay_days = np.clip(rng.gamma(2.0, 6.0, n).astype(int), 0, 90)
    late = (u > 0.97) & (status != "void")  # never paid
    unpaid_yet = (pay_days > age) | late
    status[(status == "paid") & unpaid_yet & (age <= 30)] = "open"
    status[(status == "paid") & unpaid_yet & (age > 30)] = "overdue"
    paid_at = issued + pay_days.astype("timedelta64[D]")
    return pa.table(
        {
            "invoice_id": np.arange(1, n + 1),
            "subscription_id": np.array(rows["subscription_id"])[order],
            "issued_at": pa.array(issued, pa.date32()),
            "amount": np.array(rows["amount"])[order],
            "status": status.astype(str),
            "paid_at": pa.array(paid_at, pa.date32(), mask=status != "paid"),
        }
    )


def subscription_tables(seed: int = 11) -> dict[str, pa.Table]:
    """``accounts``, ``plans``, ``subscriptions`` and ``invoices`` of a SaaS business."""
    rng = np.random.default_rng(seed)
    accounts = _accounts(rng)
    plans = _plans()
    subscriptions = _subscriptions(rng, accounts)
    invoices = _invoices(rng, subscriptions, plans)
    return {
        "accounts": accounts,
        "plans": plans,
        "subscriptions": subscriptions,
        "invoices": invoices,
    }


# --------------------------------------------------------------------------- logistics

LOG_START = np.datetime64("2023-03-01")
LOG_END = np.datetime64("2024-10-31")
N_SHIPMENTS = 21000

WAREHOUSES = (  # name, city, region, (x, y) km on a rough plane, daily weight
    ("Reno DC", "Reno", "West", (0, 0), 1.3),
    ("Dallas Hub", "Dallas", "Central", (2000, -800), 1.2),
    ("Chicago Crossdock", "Chicago", "Central", (2600, 300), 1.0),
    ("Atlanta DC", "Atlanta", "East", (3300, -700), 0.9),
    ("Newark Port", "Newark", "East", (3900, 200), 1.1),
    ("Rotterdam Hub", "Rotterdam", "Europe", (9000, 600), 0.8),
    ("Leipzig DC", "Leipzig", "Europe", (9600, 500), 0.6),
)
CARRIERS = (  # name, service level, cost per km-kg factor, on-time probability, share
    ("FastFreight", "express", 1.8, 0.95, 0.16),
    ("ParcelPro", "standard", 1.0, 0.9, 0.24),
    ("BlueLine", "standard", 0.95, 0.84, 0.2),
    ("Northstar Express", "express", 1.7, 0.91, 0.1),
    ("EcoShip", "economy", 0.6, 0.76, 0.18),
    ("Global Post", "economy", 0.7, 0.82, 0.12),
)
DESTINATIONS = {  # country -> ((x, y), share)
    "US": ((2500, -200), 0.46),
    "CA": ((2800, 1200), 0.12),
    "MX": ((1800, -2200), 0.07),
    "GB": ((8600, 900), 0.1),
    "DE": ((9500, 550), 0.1),
    "FR": ((8900, 200), 0.07),
    "JP": ((-8000, 300), 0.04),
    "AU": ((-10000, -6000), 0.04),
}
TRANSIT_DAYS = {"express": 2.0, "standard": 4.0, "economy": 7.0}
LOG_MONTH_FACTOR = np.array([0.85, 0.85, 0.95, 1.0, 1.0, 0.95, 0.9, 0.95, 1.05, 1.15, 1.45, 1.6])


def _warehouses() -> pa.Table:
    return pa.table(
        {
            "warehouse_id": np.arange(1, len(WAREHOUSES) + 1),
            "warehouse_name": [w[0] for w in WAREHOUSES],
            "city": [w[1] for w in WAREHOUSES],
            "region": [w[2] for w in WAREHOUSES],
        }
    )


def _carriers() -> pa.Table:
    return pa.table(
        {
            "carrier_id": np.arange(1, len(CARRIERS) + 1),
            "carrier_name": [c[0] for c in CARRIERS],
            "service_level": [c[1] for c in CARRIERS],
        }
    )


def _shipments(rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
    span = int((LOG_END - LOG_START).astype(int)) + 1
    days = LOG_START + np.arange(span)
    month = days.astype("datetime64[M]").astype(int) % 12
    weekday = (days.astype(int) + 3) % 7
    weights = (
        (1 + 0.35 * np.linspace(0, 1, span))
        * LOG_MONTH_FACTOR[month]
        * np.where(weekday >= 5, 0.45, 1.0)
    )
    day_idx = np.sort(rng.choice(span, N_SHIPMENTS, p=weights / weights.sum()))
    ship_day = days[day_idx]
    shipped = _timestamps(rng, ship_day, 6, 22)
    n = N_SHIPMENTS

    wh_p = np.array([w[4] for w in WAREHOUSES])
    warehouse = rng.choice(len(WAREHOUSES), n, p=wh_p / wh_p.sum())
    car_p = np.array([c[4] for c in CARRIERS])
    carrier = rng.choice(len(CARRIERS), n, p=car_p / car_p.sum())
    # European warehouses mostly ship to Europe, US ones to the Americas
    countries = list(DESTINATIONS)
    europe = np.array([WAREHOUSES[w][2] == "Europe" for w in warehouse])
    p_am = np.array(
        [DESTINATIONS[c][1] if c in ("US", "CA", "MX", "JP", "AU") else 0.02 for c in countries]
    )
    p_eu = np.array([0.6 if c in ("GB", "DE", "FR") else 0.03 for c in countries])
    dest = np.where(
        europe,
        rng.choice(len(countries), n, p=p_eu / p_eu.sum()),
        rng.choice(len(countries), n, p=p_am / p_am.sum()),
    )
    wxy = np.array([WAREHOUSES[w][3] for w in warehouse], dtype=float)
    dxy = np.array([DESTINATIONS[countries[d]][0] for d in dest], dtype=float)
    distance = np.round(
        np.hypot(*(wxy - dxy).T) * rng.uniform(0.8, 1.3, n) + rng.uniform(20, 400, n), 1
    )

    # packages: one to four per shipment
    n_packages = 1 + rng.binomial(3, 0.35, n)
    pkg_shipment = np.repeat(np.arange(n), n_packages)
    pkg_weight = np.round(rng.lognormal(1.2, 0.9, len(pkg_shipment)), 2)
    fragile = rng.random(len(pkg_shipment)) < 0.14
    weight = np.round(np.bincount(pkg_shipment, weights=pkg_weight, minlength=n), 2)

    level = np.array([CARRIERS[c][1] for c in carrier])
    factor = np.array([CARRIERS[c][2] for c in carrier])
    cost = np.round(
        factor
        * (6.0 + 0.9 * weight + 0.004 * distance + 0.00035 * weight * distance)
        * rng.uniform(0.9, 1.15, n)
        * (1 + 0.08 * (ship_day >= np.datetime64("2024-04-01"))),  # a 2024 rate increase
        2,
    )
    transit = np.array([TRANSIT_DAYS[lv] for lv in level]) + distance / 3000
    actual = transit * rng.lognormal(0.0, 0.3, n)
    peak = np.isin(month[day_idx], (10, 11))  # November, December
    on_time_p = np.array([CARRIERS[c][3] for c in carrier]) - 0.12 * peak
    promised = transit * 1.25
    late = rng.random(n) > on_time_p
    actual = np.where(
        late, np.maximum(actual, promised + rng.uniform(0.5, 4, n)), np.minimum(actual, promised)
    )
    delivered = shipped + (actual * 86400).astype("timedelta64[s]")

    u = rng.random(n)
    status = np.where(u < 0.01, "lost", np.where(u < 0.045, "returned", "delivered")).astype(object)
    end = LOG_END.astype("datetime64[s]") + np.timedelta64(86399, "s")
    status[(delivered > end) & (status != "lost")] = "in_transit"
    on_time = ~late
    on_time[status == "lost"] = False
    on_time[status == "in_transit"] = True  # not late yet
    undelivered = np.isin(status.astype(str), ("lost", "in_transit"))

    shipments = pa.table(
        {
            "shipment_id": np.arange(1, n + 1),
            "warehouse_id": warehouse + 1,
            "carrier_id": carrier + 1,
            "shipped_at": pa.array(shipped, pa.timestamp("us")),
            "delivered_at": pa.array(delivered, pa.timestamp("us"), mask=undelivered),
            "destination_country": np.array(countries)[dest],
            "weight_kg": weight,
            "cost": cost,
            "distance_km": distance,
            "on_time": pa.array(on_time, pa.bool_()),
            "status": status.astype(str),
        }
    )
    packages = pa.table(
        {
            "package_id": np.arange(1, len(pkg_shipment) + 1),
            "shipment_id": pkg_shipment + 1,
            "weight_kg": pkg_weight,
            "fragile": pa.array(fragile, pa.bool_()),
        }
    )
    return shipments, packages


def logistics_tables(seed: int = 13) -> dict[str, pa.Table]:
    """``warehouses``, ``carriers``, ``shipments`` and ``packages`` of a shipping business."""
    rng = np.random.default_rng(seed)
    shipments, packages = _shipments(rng)
    return {
        "warehouses": _warehouses(),
        "carriers": _carriers(),
        "shipments": shipments,
        "packages": packages,
    }


# --------------------------------------------------------------------------- loading

DATASETS = {"subscriptions": subscription_tables, "logistics": logistics_tables}


def tables(name: str) -> dict[str, pa.Table]:
    """The tables of dataset ``name`` ('retail', 'subscriptions' or 'logistics')."""
    if name == "retail":
        from aiser_jupyter.sources.sample import retail_tables

        return retail_tables()
    return DATASETS[name]()


def load(session: Any, name: str) -> Any:
    """Register the tables of ``name`` in ``session``'s embedded DuckDB and load its model.

    Returns the loaded SemanticModel.
    """
    if name == "retail":
        session.load_sample()
    else:
        duck = session.default_duckdb()
        for table_name, table in DATASETS[name]().items():
            duck.engine.store(table_name, table)
            if table_name not in duck.tables:
                duck.tables.append(table_name)
        session.current = duck.name
        session.changed("connections")
    return session.load_model(MODELS[name])
