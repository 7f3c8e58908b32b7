"""Deterministic datasets for the question-answering evaluation (tests/answers/).

Four businesses of a different shape from the retail sample:

- ``subscriptions``: a SaaS company (accounts, plans, subscriptions, invoices),
  2022-01-01 .. 2025-06-30 -- the data ends mid-year, not at a year boundary.
- ``logistics``: a shipping operation (warehouses, carriers, shipments, packages),
  2023-03-01 .. 2024-10-31.
- ``webanalytics``: a product website (sessions, conversions, campaigns),
  2024-01-01 .. 2025-03-31.
- ``hr``: a company's people data (employees, reviews, absences), 2019-01-01 .. 2024-09-30.

Same seed, same tables. ``load(session, name)`` registers the tables of 'retail',
'subscriptions', 'logistics', 'webanalytics' or 'hr' in a Session's embedded DuckDB and loads the
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
    "webanalytics": ROOT / "tests" / "answers" / "models" / "webanalytics.yml",
    "hr": ROOT / "tests" / "answers" / "models" / "hr.yml",
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


# --------------------------------------------------------------------------- web analytics

WEB_START = np.datetime64("2024-01-01")
WEB_END = np.datetime64("2025-03-31")  # inclusive: the last day with data
N_SESSIONS = 42000

WEB_DEVICES = {"desktop": 0.48, "mobile": 0.43, "tablet": 0.09}
WEB_BROWSERS = {  # per device: desktop, mobile, tablet
    "Chrome": (0.58, 0.52, 0.35),
    "Safari": (0.14, 0.36, 0.55),
    "Firefox": (0.12, 0.03, 0.02),
    "Edge": (0.14, 0.02, 0.03),
    "Samsung Internet": (0.02, 0.07, 0.05),
}
WEB_COUNTRIES = {
    "United States": 0.31,
    "Germany": 0.16,
    "United Kingdom": 0.13,
    "France": 0.11,
    "Spain": 0.07,
    "Netherlands": 0.06,
    "Canada": 0.07,
    "India": 0.09,
}
WEB_SOURCES = {"organic": 0.36, "paid": 0.21, "social": 0.16, "email": 0.09, "direct": 0.18}
WEB_PAGES = {  # landing page -> (share, bounce probability)
    "/": (0.30, 0.38),
    "/pricing": (0.14, 0.30),
    "/features": (0.12, 0.42),
    "/blog/getting-started": (0.13, 0.62),
    "/blog/release-notes": (0.08, 0.68),
    "/docs": (0.11, 0.45),
    "/signup": (0.07, 0.22),
    "/contact": (0.05, 0.50),
}
WEB_CAMPAIGNS = (  # name, channel, budget, traffic source, start, end
    ("Brand Search 2024", "search", 48000.0, "paid", "2024-01-01", "2024-12-31"),
    ("Competitor Search", "search", 26500.0, "paid", "2024-03-01", "2025-03-31"),
    ("Spring Launch", "display", 18000.0, "paid", "2024-03-15", "2024-06-15"),
    ("Black Friday 2024", "display", 31000.0, "paid", "2024-11-01", "2024-12-02"),
    ("Brand Search 2025", "search", 15500.0, "paid", "2025-01-01", "2025-03-31"),
    ("LinkedIn Thought Leadership", "social", 22000.0, "social", "2024-02-01", "2024-10-31"),
    ("Instagram Stories", "social", 12500.0, "social", "2024-06-01", "2025-03-31"),
    ("Monthly Newsletter", "email", 4200.0, "email", "2024-01-01", "2025-03-31"),
    ("Winter Promo Email", "email", 2600.0, "email", "2024-12-01", "2025-02-28"),
)
# goal -> (probability a session converts to it, by source organic/paid/social/email/direct)
WEB_GOALS = {
    "signup": (0.035, 0.045, 0.022, 0.05, 0.04),
    "purchase": (0.018, 0.028, 0.01, 0.035, 0.03),
    "newsletter": (0.02, 0.008, 0.025, 0.004, 0.012),
}


def _web_campaigns() -> pa.Table:
    return pa.table(
        {
            "campaign_id": np.arange(1, len(WEB_CAMPAIGNS) + 1),
            "name": [c[0] for c in WEB_CAMPAIGNS],
            "channel": [c[1] for c in WEB_CAMPAIGNS],
            "budget": [c[2] for c in WEB_CAMPAIGNS],
        }
    )


def _web_sessions(rng: np.random.Generator) -> pa.Table:
    n = N_SESSIONS
    span = int((WEB_END - WEB_START).astype(int)) + 1
    days = WEB_START + np.arange(span)
    weekday = (days.astype(int) + 3) % 7
    month = days.astype("datetime64[M]").astype(int) % 12
    weights = (
        (1 + 0.6 * np.linspace(0, 1, span))
        * np.where(weekday >= 5, 0.7, 1.0)
        * np.where(month == 10, 1.35, 1.0)  # November
    )
    day = days[np.sort(rng.choice(span, n, p=weights / weights.sum()))]
    started = _timestamps(rng, day, 0, 24)
    device = _pick(rng, WEB_DEVICES, n)
    dev_index = np.array([list(WEB_DEVICES).index(d) for d in device])
    browsers = np.array(list(WEB_BROWSERS))
    browser = np.empty(n, dtype=object)
    for k in range(len(WEB_DEVICES)):
        mask = dev_index == k
        p = np.array([WEB_BROWSERS[b][k] for b in browsers])
        browser[mask] = rng.choice(browsers, int(mask.sum()), p=p / p.sum())
    source = _pick(rng, WEB_SOURCES, n)
    pages = np.array(list(WEB_PAGES))
    page_p = np.array([WEB_PAGES[p][0] for p in pages])
    page_idx = rng.choice(len(pages), n, p=page_p / page_p.sum())
    # campaigns: paid, social (60%) and email sessions come from a campaign running that day
    campaign = np.zeros(n, dtype=int)
    for i in range(n):
        if source[i] == "organic" or source[i] == "direct":
            continue
        if source[i] == "social" and rng.random() < 0.4:
            continue
        running = [
            j
            for j, c in enumerate(WEB_CAMPAIGNS)
            if c[3] == source[i] and np.datetime64(c[4]) <= day[i] <= np.datetime64(c[5])
        ]
        if running:
            campaign[i] = 1 + int(rng.choice(running))
    bounce_p = np.array([WEB_PAGES[p][1] for p in pages])[page_idx]
    bounce_p = (
        bounce_p + np.where(device == "mobile", 0.08, 0.0) + np.where(source == "paid", 0.05, 0.0)
    )
    is_bounce = rng.random(n) < bounce_p
    pageviews = np.where(is_bounce, 1, 2 + rng.poisson(np.where(device == "desktop", 3.2, 2.1)))
    duration = np.where(
        is_bounce,
        rng.integers(0, 25, n),
        (pageviews * rng.gamma(2.0, 35.0, n)).astype(int) + 10,
    )
    # returning visitors: about 30% of sessions reuse an earlier visitor id
    visitor = np.zeros(n, dtype=int)
    next_id = 100001
    for i in range(n):
        if i > 50 and rng.random() < 0.3:
            visitor[i] = visitor[int(rng.integers(max(0, i - 4000), i))]
        else:
            visitor[i] = next_id
            next_id += 1
    return pa.table(
        {
            "session_id": np.arange(1, n + 1),
            "visitor_id": visitor,
            "started_at": pa.array(started, pa.timestamp("us")),
            "device": device.astype(str),
            "browser": browser.astype(str),
            "country": _pick(rng, WEB_COUNTRIES, n).astype(str),
            "traffic_source": source.astype(str),
            "campaign_id": pa.array(campaign, pa.int64(), mask=campaign == 0),
            "landing_page": pages[page_idx].astype(str),
            "is_bounce": pa.array(is_bounce, pa.bool_()),
            "duration_seconds": duration.astype(np.int64),
            "pageviews": pageviews.astype(np.int64),
        }
    )


def _web_conversions(rng: np.random.Generator, sessions: pa.Table) -> pa.Table:
    sources = list(WEB_SOURCES)
    src = np.array([sources.index(s) for s in sessions["traffic_source"].to_pylist()])
    bounce = sessions["is_bounce"].to_numpy(zero_copy_only=False)
    started = sessions["started_at"].to_numpy()
    device = sessions["device"].to_numpy(zero_copy_only=False)
    ids = sessions["session_id"].to_numpy()
    rows: dict[str, list[Any]] = {"session_id": [], "converted_at": [], "goal": [], "value": []}
    for goal, probs in WEB_GOALS.items():
        p = (
            np.array(probs)[src]
            * np.where(bounce, 0.15, 1.6)
            * np.where(device == "mobile", 0.75, 1.0)
        )
        hit = rng.random(len(ids)) < p
        for i in np.flatnonzero(hit):
            rows["session_id"].append(int(ids[i]))
            rows["converted_at"].append(
                started[i] + np.timedelta64(int(rng.integers(20, 1500)), "s")
            )
            rows["goal"].append(goal)
            value = round(float(rng.lognormal(4.3, 0.6)), 2) if goal == "purchase" else 0.0
            rows["value"].append(value)
    converted = np.array(rows["converted_at"], dtype="datetime64[us]")
    order = np.lexsort((np.array(rows["session_id"]), converted))
    n = len(order)
    return pa.table(
        {
            "conversion_id": np.arange(1, n + 1),
            "session_id": np.array(rows["session_id"])[order],
            "converted_at": pa.array(converted[order], pa.timestamp("us")),
            "goal": np.array(rows["goal"])[order],
            "value": np.array(rows["value"])[order],
        }
    )


def webanalytics_tables(seed: int = 17) -> dict[str, pa.Table]:
    """``sessions``, ``conversions`` and ``campaigns`` of a product website."""
    rng = np.random.default_rng(seed)
    sessions = _web_sessions(rng)
    conversions = _web_conversions(rng, sessions)
    converted = np.isin(sessions["session_id"].to_numpy(), conversions["session_id"].to_numpy())
    sessions = sessions.append_column("converted", pa.array(converted, pa.bool_()))
    return {"sessions": sessions, "conversions": conversions, "campaigns": _web_campaigns()}


# --------------------------------------------------------------------------- people / HR

HR_START = np.datetime64("2019-01-01")
HR_END = np.datetime64("2024-09-30")  # inclusive: the last day with data
N_EMPLOYEES = 1650

HR_DEPARTMENTS = {  # name -> (share, base salary)
    "Engineering": (0.30, 92000.0),
    "Sales": (0.18, 68000.0),
    "Marketing": (0.09, 64000.0),
    "Customer Support": (0.16, 46000.0),
    "Finance": (0.07, 72000.0),
    "Operations": (0.12, 55000.0),
    "People": (0.08, 58000.0),
}
HR_LOCATIONS = {"Berlin": 0.28, "London": 0.24, "New York": 0.2, "Lisbon": 0.16, "Toronto": 0.12}
HR_LOCATION_PAY = {"Berlin": 1.0, "London": 1.12, "New York": 1.3, "Lisbon": 0.72, "Toronto": 1.05}
HR_LEVELS = {
    "junior": (0.32, 0.75),
    "mid": (0.36, 1.0),
    "senior": (0.23, 1.35),
    "lead": (0.09, 1.7),
}
HR_FIRST = (
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elena",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Luca",
    "Maya",
    "Nils",
    "Olga",
    "Pedro",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Umar",
    "Vera",
    "Wen",
    "Xavier",
    "Yara",
    "Zoe",
    "Aiden",
    "Bea",
    "Chloe",
    "Dmitri",
    "Emma",
    "Felix",
    "Hana",
    "Ivan",
    "Julia",
    "Karim",
    "Lena",
    "Marco",
    "Nora",
    "Oscar",
)
HR_LAST = (
    "Schmidt",
    "Silva",
    "Smith",
    "Dubois",
    "Kowalski",
    "Nguyen",
    "Rossi",
    "Fischer",
    "Costa",
    "Brown",
    "Martin",
    "Wagner",
    "Lopez",
    "Patel",
    "Khan",
    "Meyer",
    "Ferreira",
    "Taylor",
    "Moreau",
    "Novak",
    "Jensen",
    "Weber",
    "Santos",
    "Clark",
    "Becker",
    "Oliveira",
    "Walker",
    "Laurent",
    "Hoffmann",
    "Pereira",
    "Evans",
    "Kim",
    "Chen",
    "Garcia",
    "Murphy",
    "Singh",
)
HR_REASONS = {"sick": 0.46, "vacation": 0.42, "parental": 0.04, "other": 0.08}


def _hr_employees(rng: np.random.Generator) -> pa.Table:
    n = N_EMPLOYEES
    # a fifth were already there on day one, the rest were hired at a growing pace
    founders = int(n * 0.2)
    hired = np.concatenate(
        [
            np.full(founders, HR_START) + rng.integers(0, 20, founders).astype("timedelta64[D]"),
            _growth_days(rng, HR_START + 20, HR_END - 10, n - founders, 1.2),
        ]
    )
    hired = np.sort(hired)
    names: set[str] = set()
    full = []
    for _ in range(n):
        name = f"{rng.choice(HR_FIRST)} {rng.choice(HR_LAST)}"
        while name in names:
            name = f"{rng.choice(HR_FIRST)} {rng.choice(HR_LAST)}-{rng.choice(HR_LAST)}"
        names.add(name)
        full.append(name)
    dept = np.array(list(HR_DEPARTMENTS))
    dept_p = np.array([v[0] for v in HR_DEPARTMENTS.values()])
    department = dept[rng.choice(len(dept), n, p=dept_p / dept_p.sum())]
    location = _pick(rng, HR_LOCATIONS, n)
    levels = np.array(list(HR_LEVELS))
    level_p = np.array([v[0] for v in HR_LEVELS.values()])
    level = levels[rng.choice(len(levels), n, p=level_p / level_p.sum())]
    remote_p = np.where(
        department == "Engineering", 0.45, np.where(department == "Sales", 0.12, 0.25)
    )
    remote_p = remote_p * np.where(hired >= np.datetime64("2020-06-01"), 1.3, 0.6)
    is_remote = rng.random(n) < remote_p
    base = np.array([HR_DEPARTMENTS[d][1] for d in department])
    pay = (
        base
        * np.array([HR_LEVELS[lv][1] for lv in level])
        * np.array([HR_LOCATION_PAY[loc] for loc in location])
        * rng.lognormal(0.0, 0.08, n)
    )
    salary = np.round(pay / 100) * 100
    # leavers: yearly attrition ~13%, higher in Customer Support and Sales, lower for leads
    yearly = np.where(
        department == "Customer Support", 0.22, np.where(department == "Sales", 0.17, 0.1)
    )
    yearly = yearly * np.where(level == "lead", 0.5, 1.0)
    tenure = rng.exponential(365.0 / yearly).astype(int) + 60
    left = hired + tenure.astype("timedelta64[D]")
    stayed = left > HR_END
    return pa.table(
        {
            "employee_id": np.arange(1, n + 1),
            "full_name": full,
            "department": department.astype(str),
            "location": location.astype(str),
            "level": level.astype(str),
            "hired_at": pa.array(hired, pa.date32()),
            "left_at": pa.array(left, pa.date32(), mask=stayed),
            "is_remote": pa.array(is_remote, pa.bool_()),
            "salary": salary,
        }
    )


def _hr_reviews(rng: np.random.Generator, employees: pa.Table) -> pa.Table:
    rows: dict[str, list[Any]] = {"employee_id": [], "reviewed_at": [], "score": [], "promoted": []}
    hired = employees["hired_at"].to_numpy().astype("datetime64[D]")
    left = employees["left_at"].to_pylist()
    level = employees["level"].to_pylist()
    skill = rng.normal(0.0, 0.7, len(hired))
    for i, eid in enumerate(employees["employee_id"].to_pylist()):
        stop = HR_END if left[i] is None else np.datetime64(left[i])
        # reviews twice a year, in March and September, after six months in the job
        for year in range(2019, 2025):
            for month, day in ((3, 15), (9, 15)):
                when = np.datetime64(f"{year}-{month:02d}-{day:02d}") + int(rng.integers(-10, 10))
                if when > stop or when > HR_END or when < hired[i] + 180:
                    continue
                score = int(np.clip(np.round(3.2 + skill[i] + rng.normal(0, 0.8)), 1, 5))
                promote_p = {5: 0.22, 4: 0.09}.get(score, 0.0) * (
                    0.3 if level[i] == "lead" else 1.0
                )
                rows["employee_id"].append(eid)
                rows["reviewed_at"].append(when)
                rows["score"].append(score)
                rows["promoted"].append(bool(rng.random() < promote_p))
    when = np.array(rows["reviewed_at"], dtype="datetime64[D]")
    order = np.lexsort((np.array(rows["employee_id"]), when))
    return pa.table(
        {
            "review_id": np.arange(1, len(order) + 1),
            "employee_id": np.array(rows["employee_id"])[order],
            "reviewed_at": pa.array(when[order], pa.date32()),
            "score": np.array(rows["score"], dtype=np.int32)[order],
            "promoted": pa.array(np.array(rows["promoted"])[order], pa.bool_()),
        }
    )


def _hr_absences(rng: np.random.Generator, employees: pa.Table) -> pa.Table:
    rows: dict[str, list[Any]] = {"employee_id": [], "started_on": [], "days": [], "reason": []}
    hired = employees["hired_at"].to_numpy().astype("datetime64[D]")
    left = employees["left_at"].to_pylist()
    dept = employees["department"].to_pylist()
    reasons = np.array(list(HR_REASONS))
    reason_p = np.array(list(HR_REASONS.values()))
    for i, eid in enumerate(employees["employee_id"].to_pylist()):
        stop = HR_END if left[i] is None else np.datetime64(left[i])
        span = int((stop - hired[i]).astype(int))
        if span < 20:
            continue
        rate = 5.5 if dept[i] == "Customer Support" else 4.0  # absences per year
        k = rng.poisson(rate * span / 365.0)
        for _ in range(k):
            reason = str(rng.choice(reasons, p=reason_p))
            start = hired[i] + int(rng.integers(0, span))
            days = {
                "sick": 1 + rng.poisson(1.8),
                "vacation": 2 + rng.poisson(5.0),
                "parental": 30 + rng.poisson(60.0),
                "other": 1 + rng.poisson(1.0),
            }[reason]
            rows["employee_id"].append(eid)
            rows["started_on"].append(start)
            rows["days"].append(int(days))
            rows["reason"].append(reason)
    when = np.array(rows["started_on"], dtype="datetime64[D]")
    order = np.lexsort((np.array(rows["employee_id"]), when))
    return pa.table(
        {
            "absence_id": np.arange(1, len(order) + 1),
            "employee_id": np.array(rows["employee_id"])[order],
            "started_on": pa.array(when[order], pa.date32()),
            "days": np.array(rows["days"], dtype=np.int64)[order],
            "reason": np.array(rows["reason"])[order],
        }
    )


def hr_tables(seed: int = 19) -> dict[str, pa.Table]:
    """``employees``, ``reviews`` and ``absences`` of a mid-sized company's people team."""
    rng = np.random.default_rng(seed)
    employees = _hr_employees(rng)
    return {
        "employees": employees,
        "reviews": _hr_reviews(rng, employees),
        "absences": _hr_absences(rng, employees),
    }


# --------------------------------------------------------------------------- loading

DATASETS = {
    "subscriptions": subscription_tables,
    "logistics": logistics_tables,
    "webanalytics": webanalytics_tables,
    "hr": hr_tables,
}


def tables(name: str) -> dict[str, pa.Table]:
    """The tables of dataset ``name`` ('retail', 'subscriptions', 'logistics', 'webanalytics'
    or 'hr')."""
    if name == "retail":
        from aiser_jupyter.sources.sample import retail_tables

        return retail_tables()
    return DATASETS[name]()


def load(session: Any, name: str) -> Any:
    """Register the tables of ``name`` in ``session``'s embedded DuckDB and load its model.

    Returns the loaded SemanticModel.
    """
    if name == "retail":
        session.sources.load_sample()
    else:
        duck = session.sources.default_duckdb()
        for table_name, table in DATASETS[name]().items():
            duck.engine.store(table_name, table)
            if table_name not in duck.tables:
                duck.tables.append(table_name)
        session.sources.current = duck.name
        session.changed("connections")
    return session.load_model(MODELS[name])
