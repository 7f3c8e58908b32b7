"""Deterministic retail dataset (customers, products, orders) for demos and tests.

The data has a known shape -- linear growth, weekly and yearly seasons, Poisson
noise and a few planted anomalies -- so analyses run on it can be checked
against ground truth instead of eyeballed.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

START = dt.date(2023, 1, 1)
END = dt.date(2024, 12, 31)
N_CUSTOMERS = 2000
N_PRODUCTS = 120
BASE_DAILY_ORDERS = 60.0  # expected orders on an average weekday in January 2023
TREND_GROWTH = 0.4  # +40% from the first to the last day
WEEKDAY_FACTOR = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.3, 1.3])  # Monday first
MONTH_FACTOR = np.array([0.9, 0.85, 0.95, 1.0, 1.0, 1.0, 0.95, 0.95, 1.0, 1.05, 1.4, 1.6])

REGIONS = {"West": 0.4, "North": 0.25, "East": 0.2, "South": 0.15}
SEGMENTS = {"consumer": 0.6, "smb": 0.3, "enterprise": 0.1}
SEGMENT_EXTRA_QUANTITY = {"consumer": 0.4, "smb": 1.5, "enterprise": 6.0}  # Poisson mean above 1
COUNTRIES = {"US": 0.45, "GB": 0.15, "DE": 0.12, "FR": 0.1, "CA": 0.1, "AU": 0.08}
STATUSES = {"completed": 0.9, "returned": 0.06, "cancelled": 0.04}
DISCOUNTS = np.array([0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3])
DISCOUNT_P = np.array([0.7, 0.08, 0.08, 0.05, 0.04, 0.03, 0.02])

FIRST_NAMES = ("Ava", "Ben", "Chloe", "Daniel", "Emma", "Felix", "Grace", "Henry", "Isla", "Jack")
LAST_NAMES = ("Adams", "Brown", "Clark", "Diaz", "Evans", "Garcia", "Ito", "Khan", "Lopez", "Patel")
CATEGORIES = {  # category -> (min price, max price, product nouns)
    "Electronics": (19.0, 900.0, ("Earbuds", "Speaker", "Monitor", "Keyboard", "Camera", "Tablet")),
    "Home": (9.0, 300.0, ("Lamp", "Blanket", "Kettle", "Vase", "Rug", "Cookware")),
    "Outdoors": (12.0, 450.0, ("Tent", "Backpack", "Lantern", "Bottle", "Hammock", "Stove")),
    "Toys": (5.0, 120.0, ("Puzzle", "Robot", "Blocks", "Kite", "Plush", "Boardgame")),
    "Grocery": (2.0, 40.0, ("Coffee", "Tea", "Olive-Oil", "Granola", "Chocolate", "Honey")),
    "Apparel": (10.0, 250.0, ("Jacket", "Sneakers", "T-Shirt", "Scarf", "Jeans", "Hoodie")),
}
ADJECTIVES = ("Classic", "Smart", "Eco", "Pro", "Compact", "Deluxe", "Urban", "Everyday")


@dataclass(frozen=True)
class Anomaly:
    """A day whose expected order count was multiplied by ``factor``."""

    day: dt.date
    kind: Literal["spike", "drop"]
    factor: float


PLANTED_ANOMALIES: tuple[Anomaly, ...] = (
    Anomaly(dt.date(2023, 11, 24), "spike", 4.0),  # Black Friday 2023
    Anomaly(dt.date(2024, 3, 12), "drop", 0.1),  # checkout outage
    Anomaly(dt.date(2024, 7, 16), "spike", 3.5),  # summer flash sale
    Anomaly(dt.date(2024, 11, 29), "spike", 4.0),  # Black Friday 2024
)


def _pick(rng: np.random.Generator, weights: dict[str, float], size: int) -> np.ndarray:
    """Draw ``size`` labels from ``weights`` (label -> probability)."""
    return rng.choice(np.array(list(weights)), size=size, p=list(weights.values()))


def _customers(rng: np.random.Generator) -> pa.Table:
    """Customers with ids assigned in signup order, so id ranges map to cohorts."""
    first = rng.choice(FIRST_NAMES, N_CUSTOMERS)
    last = rng.choice(LAST_NAMES, N_CUSTOMERS)
    signup_start = np.datetime64("2021-01-01")
    signup_days = (np.datetime64("2024-12-01") - signup_start).astype(int)
    signup = np.sort(signup_start + rng.integers(0, signup_days, N_CUSTOMERS))
    ids = np.arange(1, N_CUSTOMERS + 1)
    return pa.table(
        {
            "customer_id": ids,
            "name": [f"{f} {s}" for f, s in zip(first, last, strict=True)],
            "email": [
                f"{f.lower()}.{s.lower()}{i}@example.com"
                for f, s, i in zip(first, last, ids, strict=True)
            ],
            "region": _pick(rng, REGIONS, N_CUSTOMERS),
            "segment": _pick(rng, SEGMENTS, N_CUSTOMERS),
            "country": _pick(rng, COUNTRIES, N_CUSTOMERS),
            "signup_date": signup,
        }
    )


def _products(rng: np.random.Generator) -> pa.Table:
    """Products spread evenly over categories, each with a category-typical price."""
    names = list(CATEGORIES)
    category = np.array(names)[np.arange(N_PRODUCTS) % len(names)]
    low = np.array([CATEGORIES[c][0] for c in category])
    high = np.array([CATEGORIES[c][1] for c in category])
    price = np.round(np.exp(rng.uniform(np.log(low), np.log(high))), 2)
    adjectives = rng.choice(ADJECTIVES, N_PRODUCTS)
    nouns = [rng.choice(CATEGORIES[c][2]) for c in category]
    return pa.table(
        {
            "product_id": np.arange(1, N_PRODUCTS + 1),
            "name": [f"{a} {n}" for a, n in zip(adjectives, nouns, strict=True)],
            "category": category,
            "unit_price": price,
            "unit_cost": np.round(price * rng.uniform(0.4, 0.8, N_PRODUCTS), 2),
        }
    )


def _daily_order_counts(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Days of the range and their Poisson order counts (trend x seasons x anomalies)."""
    days = np.arange(np.datetime64(START), np.datetime64(END) + 1)
    weekday = (days.astype(int) + 3) % 7  # 1970-01-01 was a Thursday
    month = days.astype("datetime64[M]").astype(int) % 12
    expected = (
        BASE_DAILY_ORDERS
        * (1 + TREND_GROWTH * np.linspace(0, 1, len(days)))
        * WEEKDAY_FACTOR[weekday]
        * MONTH_FACTOR[month]
    )
    for anomaly in PLANTED_ANOMALIES:
        expected[days == np.datetime64(anomaly.day)] *= anomaly.factor
    return days, rng.poisson(expected)


def _orders(rng: np.random.Generator, customers: pa.Table, products: pa.Table) -> pa.Table:
    """Order lines; buyers are only customers who had signed up by the order date."""
    days, counts = _daily_order_counts(rng)
    order_date = np.repeat(days, counts)
    n = len(order_date)
    signed_up = np.searchsorted(customers["signup_date"].to_numpy(), order_date, side="right")
    customer_idx = (rng.random(n) * signed_up).astype(np.int64)
    popularity = rng.gamma(1.0, size=N_PRODUCTS)
    product_idx = rng.choice(N_PRODUCTS, n, p=popularity / popularity.sum())
    extra = np.array([SEGMENT_EXTRA_QUANTITY[s] for s in customers["segment"].to_pylist()])
    quantity = 1 + rng.poisson(extra[customer_idx])
    unit_price = products["unit_price"].to_numpy()[product_idx]
    discount = rng.choice(DISCOUNTS, n, p=DISCOUNT_P)
    return pa.table(
        {
            "order_id": np.arange(1, n + 1),
            "order_date": order_date,
            "customer_id": customer_idx + 1,
            "product_id": product_idx + 1,
            "quantity": quantity,
            "unit_price": unit_price,
            "discount": discount,
            "revenue": np.round(quantity * unit_price * (1 - discount), 2),
            "status": _pick(rng, STATUSES, n),
        }
    )


def retail_tables(seed: int = 7) -> dict[str, pa.Table]:
    """Build the ``customers``, ``products`` and ``orders`` tables for ``seed``.

    Same seed, byte-identical tables, so tests and demos are reproducible.
    ``revenue`` is filled for every order; filter ``status = 'completed'`` for
    booked revenue. Daily order counts follow a +40% trend, weekend and Nov/Dec
    peaks, and the spikes/drops in ``PLANTED_ANOMALIES``.
    """
    rng = np.random.default_rng(seed)
    customers, products = _customers(rng), _products(rng)
    orders = _orders(rng, customers, products)
    return {"customers": customers, "products": products, "orders": orders}


def write_retail(directory: str | os.PathLike, seed: int = 7) -> dict[str, Path]:
    """Write each table of ``retail_tables(seed)`` to ``<directory>/<name>.parquet``.

    Gives file-based sources (DuckDB ``read_parquet``, notebooks) the same data.
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, table in retail_tables(seed).items():
        paths[name] = target / f"{name}.parquet"
        pq.write_table(table, paths[name])
    return paths
