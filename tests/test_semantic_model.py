"""Loading and checking Cube data models, their errors, their /v1/meta, and a real Cube model.

Every broken model below is a small YAML text written to a file, so the line each
error must name is known by construction (the numbered comments count from 1).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import aiser_jupyter as aiser
from aiser_jupyter.semantic.build import load_model
from aiser_jupyter.semantic.compiler import to_sql
from aiser_jupyter.semantic.loader import ModelError
from aiser_jupyter.semantic.meta import meta, summary
from aiser_jupyter.semantic.model import SemanticModel
from tests.conftest import run, run_failing

RETAIL = Path("examples/model/retail.yml")
CUBE_FIXTURE = Path(__file__).parent / "fixtures" / "cube_model"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load_error(source) -> ModelError:
    with pytest.raises(ModelError) as caught:
        load_model(source)
    return caught.value


def assert_names(error: ModelError, file: Path, line: int, member: str | None, problem: str):
    """The message says where (file and line), what (member) and why (problem)."""
    text = str(error)
    assert (error.file, error.line, error.member) == (str(file), line, member), text
    where = f"{file}:{line}, {member}: " if member else f"{file}:{line}: "
    assert text.startswith(where), text
    assert problem in text, text


# -- 1. loading from a file, a folder, a dict, and through %aiser model ------------------

ORDERS_YML = """
cubes:
  - name: orders
    sql_table: orders
    joins:
      - name: customers
        relationship: many_to_one
        sql: "{CUBE}.customer_id = {customers.id}"
    measures:
      - name: count
        type: count
      - name: revenue
        type: sum
        sql: amount
    dimensions:
      - name: id
        sql: id
        type: number
        primary_key: true
      - name: status
        sql: status
      - name: region
        sql: "{customers.region}"
"""
CUSTOMERS_YAML = """
cubes:
  - name: customers
    sql_table: customers
    measures:
      - name: count
        type: count
    dimensions:
      - name: id
        sql: id
        type: number
        primary_key: true
      - name: region
        sql: region
"""
SALES_VIEW_YML = """
views:
  - name: sales
    cubes:
      - join_path: orders
        includes: [count, revenue, status]
      - join_path: orders.customers
        includes: [region]
        prefix: true
"""


@pytest.fixture
def model_folder(tmp_path) -> Path:
    """Cubes split across files (one .yml, one .yaml), a view in a third, in subfolders."""
    folder = tmp_path / "model"
    write(folder, "cubes/orders.yml", ORDERS_YML)
    write(folder, "cubes/customers.yaml", CUSTOMERS_YAML)
    write(folder, "views/sales.yml", SALES_VIEW_YML)
    return folder


def test_load_from_a_file():
    model = load_model(RETAIL)
    assert {"orders", "customers", "products"} <= set(model.cubes)
    assert "sales" in model.views
    orders = model.cubes["orders"]
    assert orders.sql_table == "orders"
    assert orders.primary_key.name == "order_id"
    assert orders.where == f"{RETAIL}:3"
    assert model.member("orders.revenue").where.startswith(f"{RETAIL}:")
    assert model.source == str(RETAIL)


def test_load_from_a_folder_of_files(model_folder):
    model = load_model(model_folder)
    assert sorted(model.cubes) == ["customers", "orders"]
    assert list(model.views) == ["sales"]
    assert model.cubes["customers"].where == f"{model_folder / 'cubes/customers.yaml'}:2"
    assert model.cubes["orders"].joins["customers"].relationship == "many_to_one"
    # a reference to a member defined in another file resolves
    assert model.member("orders.region").sql.refs == (("customers", "region"),)
    assert model.views["sales"].members == {
        "count": ("orders.count", ("orders",)),
        "revenue": ("orders.revenue", ("orders",)),
        "status": ("orders.status", ("orders",)),
        "customers_region": ("customers.region", ("orders", "customers")),
    }


def test_a_folder_ignores_jupyter_checkpoints_and_hidden_folders(model_folder):
    # Jupyter saves a copy of every file edited in it under .ipynb_checkpoints/
    write(model_folder, "cubes/.ipynb_checkpoints/orders-checkpoint.yml", ORDERS_YML)
    write(model_folder, ".git/old.yml", "cubes: nonsense")
    model = load_model(model_folder)
    assert sorted(model.cubes) == ["customers", "orders"]


def test_an_empty_folder_or_a_missing_path_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "no .yml or .yaml files" in str(load_error(tmp_path / "empty"))
    assert "no such file or folder" in str(load_error(tmp_path / "nope.yml"))


def test_load_from_a_dict():
    model = load_model(
        {
            "cubes": [
                {
                    "name": "orders",
                    "sql_table": "orders",
                    "measures": [{"name": "count", "type": "count"}],
                    "dimensions": [{"name": "status", "sql": "status"}],
                }
            ]
        }
    )
    assert model.source == "<dict>"
    assert model.member("orders.count").type == "count"
    assert model.member("orders.status").type == "string"  # the default type
    assert model.member("orders.status").title == "Status"
    error = load_error({"cubes": [{"name": "orders", "sql_table": "orders", "measures": [{}]}]})
    assert "a measure needs a 'name'" in str(error)


def test_magic_model_load_then_show_every_member(ip, model_folder, capsys):
    assert run(ip, f"%aiser model load {model_folder}") is None
    assert "Loaded 2 cubes and 1 views" in capsys.readouterr().out
    assert aiser.session().model is not None
    frame = run(ip, "%aiser model")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["cube", "member", "kind", "type", "title", "description"]
    assert sorted(zip(frame.cube, frame.member, frame.kind, frame.type, strict=True)) == sorted(
        [
            ("orders", "orders.count", "measure", "count"),
            ("orders", "orders.revenue", "measure", "sum"),
            ("orders", "orders.id", "dimension", "number"),
            ("orders", "orders.status", "dimension", "string"),
            ("orders", "orders.region", "dimension", "string"),
            ("customers", "customers.count", "measure", "count"),
            ("customers", "customers.id", "dimension", "number"),
            ("customers", "customers.region", "dimension", "string"),
            ("sales", "sales.count", "measure", "count"),
            ("sales", "sales.revenue", "measure", "sum"),
            ("sales", "sales.status", "dimension", "string"),
            ("sales", "sales.customers_region", "dimension", "string"),
        ]
    )
    described = run(ip, "%aiser model meta")
    assert [c["name"] for c in described["cubes"]] == ["customers", "orders", "sales"]  # file order
    data, _ = ip.display_formatter.format(aiser.model())  # shows as the same table
    assert "sales.customers_region" in data["text/html"] and "<table" in data["text/html"]


def test_magic_model_load_of_a_broken_model_names_file_and_line(ip, tmp_path):
    path = write(
        tmp_path,
        "broken.yml",
        """
        cubes:
          - name: orders
            sql_table: orders
            measures:
              - name: total
                type: summ
                sql: amount
        """,
    )
    error = run_failing(ip, f"%aiser model load {path}")
    assert isinstance(error, ModelError)
    assert_names(error, path, 5, "orders.total", "unknown measure type 'summ'")


def test_magic_model_before_any_load_says_how_to_load(ip):
    error = run_failing(ip, "%aiser model")
    assert "%aiser model load PATH" in str(error)


# -- 2. every documented model feature parses -----------------------------------------

FULL_MODEL = """
cubes:
  - name: orders
    sql_table: shop.orders
    data_source: default
    title: Shop orders
    description: One row per order.
    meta:
      owner: sales
      tags: [core, finance]
    public: true
    joins:
      - name: customers
        relationship: many_to_one
        sql: "{CUBE}.customer_id = {customers.id}"
      - name: line_items
        relationship: one_to_many
        sql: "{CUBE}.id = {line_items}.order_id"
      - name: invoices
        relationship: one_to_one
        sql: "{CUBE}.id = {invoices.order_id}"
    measures:
      - name: count
        type: count
      - name: buyers
        type: count_distinct
        sql: customer_id
      - name: approx_buyers
        type: count_distinct_approx
        sql: customer_id
      - name: revenue
        type: sum
        sql: amount
        title: Revenue (net)
        description: After discounts.
        format: currency
        meta:
          unit: EUR
      - name: average_amount
        type: avg
        sql: amount
      - name: smallest
        type: min
        sql: amount
      - name: largest
        type: max
        sql: amount
      - name: average_order_value
        type: number
        sql: "{revenue} / NULLIF({count}, 0)"
      - name: statuses
        type: string
        sql: "STRING_AGG(DISTINCT {CUBE}.status, ',')"
      - name: last_order_at
        type: time
        sql: "MAX({CUBE}.created_at)"
      - name: any_refund
        type: boolean
        sql: "BOOL_OR({CUBE}.refunded)"
      - name: cumulative_revenue
        type: running_total
        sql: amount
      - name: completed_count
        type: count
        public: false
        filters:
          - sql: "{CUBE}.status = 'completed'"
          - sql: "{CUBE.amount} > 0"
    dimensions:
      - name: id
        sql: id
        type: number
        primary_key: true
      - name: customer_id
        sql: customer_id
        type: number
      - name: status
        sql: status
        type: string
      - name: amount
        sql: amount
        type: number
      - name: created_at
        sql: created_at
        type: time
      - name: refunded
        sql: refunded
        type: boolean
      - name: size
        type: string
        case:
          when:
            - sql: "{CUBE}.amount >= 100"
              label: large
            - sql: "{CUBE}.amount >= 10"
              label: medium
          else:
            label: small
    segments:
      - name: completed
        sql: "{CUBE}.status = 'completed'"
      - name: large
        sql: "{amount} >= 100"

  - name: customers
    sql_table: customers
    data_source: crm
    joins:
      - name: addresses
        relationship: has_one
        sql: "{CUBE}.id = {addresses.customer_id}"
      - name: tickets
        relationship: has_many
        sql: "{CUBE}.id = {tickets.customer_id}"
      - name: orders
        relationship: one_to_many
        sql: "{CUBE}.id = {orders.customer_id}"
    dimensions:
      - name: id
        sql: id
        type: number
        primary_key: true
      - name: name
        sql: name

  - name: line_items
    sql_table: line_items
    joins:
      - name: products
        relationship: belongs_to
        sql: "{CUBE}.product_id = {products.id}"
    dimensions:
      - name: id
        sql: id
        type: number
        primary_key: true

  - name: products
    sql: SELECT * FROM catalog WHERE NOT discontinued
    public: false
    dimensions:
      - name: id
        sql: id
        type: number
        primary_key: true
      - name: category
        sql: category

  - name: invoices
    sql_table: invoices
    dimensions:
      - name: id
        sql: id
        primary_key: true
      - name: order_id
        sql: order_id

  - name: addresses
    sql_table: addresses
    dimensions:
      - name: id
        sql: id
        primary_key: true
      - name: customer_id
        sql: customer_id

  - name: tickets
    sql_table: tickets
    measures:
      - name: count
        type: count
    dimensions:
      - name: id
        sql: id
        primary_key: true
      - name: customer_id
        sql: customer_id

views:
  - name: order_facts
    title: Order facts
    description: Orders with their customers and products.
    cubes:
      - join_path: orders
        includes:
          - count
          - revenue
          - name: status
            alias: order_status
      - join_path: orders.customers
        includes: "*"
        excludes: [id]
        prefix: true
      - join_path: orders.line_items.products
        includes: [category]
  - name: everything_about_orders
    public: false
    cubes:
      - join_path: orders
"""


@pytest.fixture
def full_model(tmp_path) -> SemanticModel:
    return load_model(write(tmp_path, "full.yml", FULL_MODEL))


def test_cube_attributes_parse(full_model):
    orders = full_model.cubes["orders"]
    # Cube calls its default data source "default": here that is the current connection
    assert (orders.sql_table, orders.sql, orders.data_source) == ("shop.orders", None, None)
    assert full_model.cubes["customers"].data_source == "crm"
    assert (orders.title, orders.description, orders.public) == (
        "Shop orders",
        "One row per order.",
        True,
    )
    assert orders.meta == {"owner": "sales", "tags": ["core", "finance"]}
    products = full_model.cubes["products"]
    assert (products.sql_table, products.sql) == (
        None,
        "SELECT * FROM catalog WHERE NOT discontinued",
    )
    assert products.public is False
    assert products.title == "Products"  # a default title from the name
    assert full_model.cubes["line_items"].title == "Line Items"


def test_every_relationship_spelling_parses(full_model):
    relationship = {
        (cube.name, join.target): join.relationship
        for cube in full_model.cubes.values()
        for join in cube.joins.values()
    }
    assert relationship == {
        ("orders", "customers"): "many_to_one",
        ("orders", "line_items"): "one_to_many",
        ("orders", "invoices"): "one_to_one",
        ("customers", "addresses"): "one_to_one",  # has_one
        ("customers", "tickets"): "one_to_many",  # has_many
        ("customers", "orders"): "one_to_many",  # the other way: two cubes both ways is fine
        ("line_items", "products"): "many_to_one",  # belongs_to
    }


@pytest.mark.parametrize(
    ("spelling", "meaning"),
    [
        ("one_to_one", "one_to_one"),
        ("one_to_many", "one_to_many"),
        ("many_to_one", "many_to_one"),
        ("has_one", "one_to_one"),
        ("has_many", "one_to_many"),
        ("belongs_to", "many_to_one"),
        ("hasOne", "one_to_one"),  # Cube's older camelCase spellings
        ("hasMany", "one_to_many"),
        ("belongsTo", "many_to_one"),
    ],
)
def test_relationship_spellings(spelling, meaning):
    model = load_model(
        {
            "cubes": [
                {
                    "name": "a",
                    "sql_table": "a",
                    "joins": [{"name": "b", "relationship": spelling, "sql": "{a}.id = {b}.id"}],
                    "dimensions": [{"name": "id", "sql": "id", "primary_key": True}],
                },
                {
                    "name": "b",
                    "sql_table": "b",
                    "dimensions": [{"name": "id", "sql": "id", "primary_key": True}],
                },
            ]
        }
    )
    assert model.cubes["a"].joins["b"].relationship == meaning


def test_every_measure_type_parses(full_model):
    measures = {m.name: m.type for m in full_model.cubes["orders"].by_kind("measure")}
    assert measures == {
        "count": "count",
        "buyers": "count_distinct",
        "approx_buyers": "count_distinct_approx",
        "revenue": "sum",
        "average_amount": "avg",
        "smallest": "min",
        "largest": "max",
        "average_order_value": "number",
        "statuses": "string",
        "last_order_at": "time",
        "any_refund": "boolean",
        "cumulative_revenue": "running_total",
        "completed_count": "count",
    }
    revenue = full_model.member("orders.revenue")
    assert (revenue.title, revenue.description, revenue.format, revenue.meta) == (
        "Revenue (net)",
        "After discounts.",
        "currency",
        {"unit": "EUR"},
    )
    assert full_model.member("orders.count").sql is None
    assert full_model.member("orders.average_order_value").sql.refs == (("revenue",), ("count",))
    assert full_model.member("orders.average_order_value").is_aggregate is False
    assert full_model.member("orders.cumulative_revenue").is_aggregate is True


def test_measure_filters_parse(full_model):
    completed = full_model.member("orders.completed_count")
    assert completed.public is False
    assert [f.refs for f in completed.filters] == [(("CUBE",),), (("CUBE", "amount"),)]


def test_dimension_types_primary_key_and_case_parse(full_model):
    dimensions = {
        m.name: (m.type, m.primary_key) for m in full_model.cubes["orders"].by_kind("dimension")
    }
    assert dimensions == {
        "id": ("number", True),
        "customer_id": ("number", False),
        "status": ("string", False),
        "amount": ("number", False),
        "created_at": ("time", False),
        "refunded": ("boolean", False),
        "size": ("string", False),
    }
    assert full_model.cubes["orders"].primary_key.name == "id"
    size = full_model.member("orders.size")
    assert size.sql is None
    assert size.case == {
        "when": [
            {"sql": "{CUBE}.amount >= 100", "label": "large"},
            {"sql": "{CUBE}.amount >= 10", "label": "medium"},
        ],
        "else": {"label": "small"},
    }


def test_segments_parse(full_model):
    segments = full_model.cubes["orders"].by_kind("segment")
    assert [(s.name, s.type) for s in segments] == [("completed", "boolean"), ("large", "boolean")]
    assert segments[1].sql.refs == (("amount",),)


def test_javascript_style_references_read_like_cube_reads_them():
    # Cube's own YAML fixtures write "${CUBE}.user_id = ${order_users.id}" too
    model = load_model(
        {
            "cubes": [
                {
                    "name": "orders",
                    "sql_table": "orders",
                    "dimensions": [
                        {"name": "amount", "sql": "amount", "type": "number"},
                        {"name": "label", "sql": "${CUBE}.code || '$' || ${amount}"},
                    ],
                }
            ]
        }
    )
    label = model.member("orders.label").sql
    assert label.refs == (("CUBE",), ("amount",))
    assert "$__aiser_ref" not in label.text and "'$'" in label.text
    assert "$" not in to_sql(model, {"dimensions": ["orders.label"]}).replace("'$'", "")


def test_views_parse_join_paths_includes_excludes_prefix_and_alias(full_model):
    view = full_model.views["order_facts"]
    assert (view.title, view.description, view.public) == (
        "Order facts",
        "Orders with their customers and products.",
        True,
    )
    assert view.members == {
        "count": ("orders.count", ("orders",)),
        "revenue": ("orders.revenue", ("orders",)),
        "order_status": ("orders.status", ("orders",)),
        "customers_name": ("customers.name", ("orders", "customers")),
        "category": ("products.category", ("orders", "line_items", "products")),
    }
    everything = full_model.views["everything_about_orders"]
    assert everything.public is False
    assert set(everything.members) == set(full_model.cubes["orders"].members)  # includes: "*"
    assert full_model.member("order_facts.order_status") is full_model.member("orders.status")


def test_every_measure_type_runs_on_duckdb(tmp_path):
    """Parsing is not enough: each measure type answers a query over real rows."""
    session = aiser.session()
    session.sql(
        """
        CREATE TABLE orders AS SELECT * FROM (VALUES
          (1, 10, 'completed', 100.0, TIMESTAMP '2024-01-01', false),
          (2, 10, 'completed', 20.0, TIMESTAMP '2024-01-02', false),
          (3, 11, 'returned', 5.0, TIMESTAMP '2024-01-03', true)
        ) AS t(id, customer_id, status, amount, created_at, refunded)"""
    )
    text = FULL_MODEL.replace("sql_table: shop.orders", "sql_table: orders")
    session.load_model(write(tmp_path, "full.yml", text))
    measures = [m.full_name for m in session.model.cubes["orders"].by_kind("measure")]
    got = session.query({"measures": measures}).df.iloc[0].to_dict()
    assert got["orders.count"] == 3
    assert got["orders.buyers"] == 2
    assert got["orders.approx_buyers"] == 2
    assert got["orders.revenue"] == 125
    assert math.isclose(got["orders.average_amount"], 125 / 3)
    assert (got["orders.smallest"], got["orders.largest"]) == (5, 100)
    assert math.isclose(got["orders.average_order_value"], 125 / 3)
    assert sorted(got["orders.statuses"].split(",")) == ["completed", "returned"]
    assert pd.Timestamp(got["orders.last_order_at"]) == pd.Timestamp("2024-01-03")
    assert bool(got["orders.any_refund"]) is True
    assert got["orders.cumulative_revenue"] == 125
    assert got["orders.completed_count"] == 2


# -- 3. clear errors: file, line, member, problem -------------------------------------

ERRORS = {
    "unknown_member_reference": (
        """
        cubes:                          # 1
          - name: orders                # 2
            sql_table: orders           # 3
            measures:                   # 4
              - name: total             # 5
                type: sum               # 6
                sql: "{nope} * 2"       # 7
        """,
        5,
        "orders.total",
        "unknown reference {nope}: not a member of orders nor a cube",
    ),
    "unknown_member_of_another_cube": (
        """
        cubes:                                   # 1
          - name: orders                         # 2
            sql_table: orders                    # 3
            dimensions:                          # 4
              - name: id                         # 5
                sql: id                          # 6
                primary_key: true                # 7
              - name: region                     # 8
                sql: "{customers.nope}"          # 9
          - name: customers                      # 10
            sql_table: customers                 # 11
            dimensions:                          # 12
              - name: id                         # 13
                sql: id                          # 14
        """,
        8,
        "orders.region",
        "unknown reference {customers.nope}: customers has no member 'nope'",
    ),
    "unknown_cube_in_a_reference": (
        """
        cubes:                                   # 1
          - name: orders                         # 2
            sql_table: orders                    # 3
            dimensions:                          # 4
              - name: region                     # 5
                sql: "{ghosts.region}"           # 6
        """,
        5,
        "orders.region",
        "unknown cube in {ghosts.region}",
    ),
    "join_to_an_unknown_cube": (
        """
        cubes:                                   # 1
          - name: orders                         # 2
            sql_table: orders                    # 3
            joins:                               # 4
              - name: ghosts                     # 5
                relationship: many_to_one        # 6
                sql: "{CUBE}.ghost_id = {ghosts}.id"
            dimensions:                          # 8
              - name: id                         # 9
                sql: id                          # 10
                primary_key: true                # 11
        """,
        5,
        "orders → ghosts",
        "join to unknown cube 'ghosts'",
    ),
    "unknown_reference_in_a_join": (
        """
        cubes:                                   # 1
          - name: orders                         # 2
            sql_table: orders                    # 3
            joins:                               # 4
              - name: customers                  # 5
                relationship: many_to_one        # 6
                sql: "{CUBE}.customer_id = {customers.nope}"
            dimensions:                          # 8
              - name: id                         # 9
                sql: id                          # 10
                primary_key: true                # 11
          - name: customers                      # 12
            sql_table: customers                 # 13
            dimensions:                          # 14
              - name: id                         # 15
                sql: id                          # 16
                primary_key: true                # 17
        """,
        5,
        "orders → customers",
        "customers has no member 'nope'",
    ),
    "unknown_relationship": (
        """
        cubes:                                   # 1
          - name: orders                         # 2
            sql_table: orders                    # 3
            joins:                               # 4
              - name: customers                  # 5
                relationship: many_to_many       # 6
                sql: "1 = 1"                     # 7
        """,
        5,
        "orders → customers",
        "unknown join relationship 'many_to_many'",
    ),
    "join_cycle_through_three_cubes": (
        """
        cubes:                                   # 1
          - name: a                              # 2
            sql_table: a                         # 3
            joins:                               # 4
              - name: b                          # 5
                relationship: many_to_one        # 6
                sql: "{CUBE}.b_id = {b}.id"      # 7
            dimensions:                          # 8
              - name: id                         # 9
                sql: id                          # 10
                primary_key: true                # 11
          - name: b                              # 12
            sql_table: b                         # 13
            joins:                               # 14
              - name: c                          # 15
                relationship: many_to_one        # 16
                sql: "{CUBE}.c_id = {c}.id"      # 17
            dimensions:                          # 18
              - name: id                         # 19
                sql: id                          # 20
                primary_key: true                # 21
          - name: c                              # 22
            sql_table: c                         # 23
            joins:                               # 24
              - name: a                          # 25
                relationship: many_to_one        # 26
                sql: "{CUBE}.a_id = {a}.id"      # 27
            dimensions:                          # 28
              - name: id                         # 29
                sql: id                          # 30
                primary_key: true                # 31
        """,
        15,
        "b → c",
        "join cycle b – c – a – b",
    ),
    "duplicate_member_name": (
        """
        cubes:                                   # 1
          - name: orders                         # 2
            sql_table: orders                    # 3
            measures:                            # 4
              - name: count                      # 5
                type: count                      # 6
            dimensions:                          # 7
              - name: count                      # 8
                sql: n                           # 9
        """,
        8,
        "orders.count",
        "duplicate member name 'count'",
    ),
    "missing_primary_key_of_a_joined_cube": (
        """
        cubes:                                   # 1
          - name: orders                         # 2
            sql_table: orders                    # 3
            joins:                               # 4
              - name: customers                  # 5
                relationship: many_to_one        # 6
                sql: "{CUBE}.customer_id = {customers}.id"
            dimensions:                          # 8
              - name: id                         # 9
                sql: id                          # 10
                primary_key: true                # 11
          - name: customers                      # 12
            sql_table: customers                 # 13
            dimensions:                          # 14
              - name: id                         # 15
                sql: id                          # 16
        """,
        12,
        "customers",
        "a cube in a join needs a primary_key dimension",
    ),
    "unknown_measure_type": (
        """
        cubes:                                   # 1
          - name: orders                         # 2
            sql_table: orders                    # 3
            measures:                            # 4
              - name: total                      # 5
                type: summ                       # 6
                sql: amount                      # 7
        """,
        5,
        "orders.total",
        "unknown measure type 'summ' (one of avg, boolean, count, count_distinct",
    ),
    "unknown_dimension_type": (
        """
        cubes:                                   # 1
          - name: orders                         # 2
            sql_table: orders                    # 3
            dimensions:                          # 4
              - name: status                     # 5
                type: text                       # 6
                sql: status                      # 7
        """,
        5,
        "orders.status",
        "unknown dimension type 'text'",
    ),
    "measure_without_sql": (
        """
        cubes:                                   # 1
          - name: orders                         # 2
            sql_table: orders                    # 3
            measures:                            # 4
              - name: total                      # 5
                type: sum                        # 6
        """,
        5,
        "orders.total",
        "a sum measure needs 'sql'",
    ),
    "circular_measures": (
        """
        cubes:                                   # 1
          - name: orders                         # 2
            sql_table: orders                    # 3
            measures:                            # 4
              - name: margin                     # 5
                type: number                     # 6
                sql: "{ratio} * 100"             # 7
              - name: ratio                      # 8
                type: number                     # 9
                sql: "{margin} / 100"            # 10
        """,
        5,
        "orders.margin",
        "circular reference: orders.margin → orders.ratio → orders.margin",
    ),
    "circular_dimensions_across_cubes": (
        """
        cubes:                                   # 1
          - name: a                              # 2
            sql_table: a                         # 3
            dimensions:                          # 4
              - name: x                          # 5
                sql: "{b.y} + 1"                 # 6
          - name: b                              # 7
            sql_table: b                         # 8
            dimensions:                          # 9
              - name: y                          # 10
                sql: "{a.x} + 1"                 # 11
        """,
        5,
        "a.x",
        "circular reference: a.x → b.y → a.x",
    ),
    "view_includes_a_member_that_does_not_exist": (
        """
        cubes:                                   # 1
          - name: orders                         # 2
            sql_table: orders                    # 3
            measures:                            # 4
              - name: count                      # 5
                type: count                      # 6
        views:                                   # 7
          - name: sales                          # 8
            cubes:                               # 9
              - join_path: orders                # 10
                includes:                        # 11
                  - count                        # 12
                  - revenue                      # 13
        """,
        10,
        "sales",
        "unknown member 'revenue' of cube 'orders'",
    ),
    "view_aliases_a_member_that_does_not_exist": (
        """
        cubes:                                   # 1
          - name: orders                         # 2
            sql_table: orders                    # 3
            measures:                            # 4
              - name: count                      # 5
                type: count                      # 6
        views:                                   # 7
          - name: sales                          # 8
            cubes:                               # 9
              - join_path: orders                # 10
                includes:                        # 11
                  - name: revenue                # 12
                    alias: total                 # 13
        """,
        10,
        "sales",
        "unknown member 'revenue' of cube 'orders'",
    ),
    "view_join_path_through_an_unknown_cube": (
        """
        cubes:                                   # 1
          - name: orders                         # 2
            sql_table: orders                    # 3
        views:                                   # 4
          - name: sales                          # 5
            cubes:                               # 6
              - join_path: orders.ghosts         # 7
        """,
        7,
        "sales",
        "unknown cube 'ghosts' in join_path",
    ),
    "view_join_path_along_no_join": (
        """
        cubes:                                   # 1
          - name: orders                         # 2
            sql_table: orders                    # 3
          - name: products                       # 4
            sql_table: products                  # 5
        views:                                   # 6
          - name: sales                          # 7
            cubes:                               # 8
              - join_path: orders.products       # 9
        """,
        9,
        "sales",
        "join_path 'orders.products': orders has no join to products",
    ),
    "view_member_twice": (
        """
        cubes:                                   # 1
          - name: orders                         # 2
            sql_table: orders                    # 3
            measures:                            # 4
              - name: count                      # 5
                type: count                      # 6
        views:                                   # 7
          - name: sales                          # 8
            cubes:                               # 9
              - join_path: orders                # 10
                includes: [count]                # 11
              - join_path: orders                # 12
                includes: [count]                # 13
        """,
        12,
        "sales",
        "duplicate member 'count' in the view",
    ),
    "view_named_like_a_cube": (
        """
        cubes:                                   # 1
          - name: orders                         # 2
            sql_table: orders                    # 3
        views:                                   # 4
          - name: orders                         # 5
            cubes:                               # 6
              - join_path: orders                # 7
        """,
        5,
        "orders",
        "duplicate name: a cube or view has it already",
    ),
    "cube_without_a_table": (
        """
        cubes:                                   # 1
          - name: orders                         # 2
            title: Orders                        # 3
        """,
        2,
        "orders",
        "a cube needs 'sql_table' or 'sql'",
    ),
    "jinja_is_refused_not_misread": (
        """
        cubes:                                   # 1
          - name: orders                         # 2
            sql_table: orders                    # 3
            dimensions:                          # 4
              - name: status                     # 5
                sql: "{{ status_column }}"       # 6
        """,
        5,
        "orders.status",
        "Jinja templates in the model are not supported yet",
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_a_broken_model_names_file_line_member_and_problem(tmp_path, case):
    text, line, member, problem = ERRORS[case]
    path = write(tmp_path, f"{case}.yml", text)
    assert_names(load_error(path), path, line, member, problem)


def test_duplicate_cube_name_across_two_files_names_both(tmp_path):
    write(
        tmp_path,
        "model/a.yml",
        """
        cubes:
          - name: orders
            sql_table: orders
        """,
    )
    second = write(
        tmp_path,
        "model/b.yml",
        """
        cubes:
          - name: customers
            sql_table: customers

          - name: orders
            sql_table: legacy_orders
        """,
    )
    error = load_error(tmp_path / "model")
    assert_names(error, second, 5, "orders", "duplicate cube name")
    assert f"(first at {tmp_path / 'model/a.yml'}:2)" in str(error)


def test_invalid_yaml_names_the_line_of_the_syntax_error(tmp_path):
    path = write(
        tmp_path,
        "bad.yml",
        """
        cubes:
          - name: orders
            sql_table: orders
            measures:
              - name: total
                type: sum
               sql: amount
        """,
    )
    assert_names(load_error(path), path, 7, None, "not valid YAML: expected <block end>")


def test_an_unclosed_quote_names_the_line_where_it_opened(tmp_path):
    path = write(
        tmp_path,
        "bad.yml",
        """
        cubes:
          - name: orders
            sql_table: "orders
            measures: []
        """,
    )
    error = load_error(path)
    assert "not valid YAML: found unexpected end of stream" in str(error)
    assert "while scanning a quoted scalar started at line 3" in str(error)


def test_a_key_given_twice_is_an_error_not_a_silent_overwrite(tmp_path):
    # PyYAML keeps the second `measures:` and drops the first without a word
    path = write(
        tmp_path,
        "twice.yml",
        """
        cubes:
          - name: orders
            sql_table: orders
            measures:
              - name: count
                type: count
            measures:
              - name: revenue
                type: sum
                sql: amount
        """,
    )
    assert_names(
        load_error(path),
        path,
        7,
        None,
        "not valid YAML: duplicate key 'measures' (first at line 4)",
    )


def test_a_model_that_is_not_a_mapping_of_lists(tmp_path):
    path = write(tmp_path, "list.yml", "- name: orders\n")
    assert_names(load_error(path), path, 1, None, "expected a mapping with 'cubes'")
    path = write(tmp_path, "cubes.yml", "cubes:\n  name: orders\n")
    assert_names(load_error(path), path, 1, None, "'cubes' must be a list of mappings")
    path = write(
        tmp_path,
        "joins.yml",
        """
        cubes:
          - name: orders
            sql_table: orders
            joins: [customers]
        """,
    )
    assert_names(load_error(path), path, 2, "orders", "each entry of 'joins' must be a mapping")
    path = write(
        tmp_path,
        "includes.yml",
        """
        cubes:
          - name: orders
            sql_table: orders
            measures:
              - name: count
                type: count
        views:
          - name: sales
            cubes:
              - join_path: orders
                includes: count
        """,
    )
    assert_names(load_error(path), path, 10, "sales", "'includes' must be \"*\" or a list")


# -- 4. meta(): Cube's /v1/meta shape ---------------------------------------------------


def by_name(items: list[dict]) -> dict[str, dict]:
    return {item["name"]: item for item in items}


def test_meta_lists_cubes_and_views_in_the_v1_meta_shape(full_model):
    described = meta(full_model)
    assert list(described) == ["cubes"]
    entries = by_name(described["cubes"])
    assert [(c["name"], c["type"]) for c in described["cubes"]] == [
        ("orders", "cube"),
        ("customers", "cube"),
        ("line_items", "cube"),
        ("products", "cube"),
        ("invoices", "cube"),
        ("addresses", "cube"),
        ("tickets", "cube"),
        ("order_facts", "view"),
        ("everything_about_orders", "view"),
    ]
    orders = entries["orders"]
    assert (orders["title"], orders["description"], orders["public"], orders["meta"]) == (
        "Shop orders",
        "One row per order.",
        True,
        {"owner": "sales", "tags": ["core", "finance"]},
    )
    assert entries["products"]["public"] is False
    assert "description" not in entries["products"]  # no nulls, as Cube leaves them out
    for entry in described["cubes"]:
        assert set(entry) >= {"name", "title", "type", "measures", "dimensions", "segments"}


def test_meta_measures_have_names_titles_types_and_agg_types(full_model):
    measures = by_name(by_name(meta(full_model)["cubes"])["orders"]["measures"])
    assert list(measures) == [m.full_name for m in full_model.cubes["orders"].by_kind("measure")]
    assert measures["orders.revenue"] == {
        "name": "orders.revenue",
        "title": "Shop orders Revenue (net)",
        "shortTitle": "Revenue (net)",
        "description": "After discounts.",
        "public": True,
        "meta": {"unit": "EUR"},
        "type": "number",
        "aggType": "sum",
        "format": "currency",
        "cumulative": False,
    }
    kinds = {name: (m["type"], m["aggType"]) for name, m in measures.items()}
    assert kinds == {
        "orders.count": ("number", "count"),
        "orders.buyers": ("number", "count_distinct"),
        "orders.approx_buyers": ("number", "count_distinct_approx"),
        "orders.revenue": ("number", "sum"),
        "orders.average_amount": ("number", "avg"),
        "orders.smallest": ("number", "min"),
        "orders.largest": ("number", "max"),
        "orders.average_order_value": ("number", "number"),
        "orders.statuses": ("string", "string"),
        "orders.last_order_at": ("time", "time"),
        "orders.any_refund": ("boolean", "boolean"),
        "orders.cumulative_revenue": ("number", "running_total"),
        "orders.completed_count": ("number", "count"),
    }
    assert measures["orders.cumulative_revenue"]["cumulative"] is True
    assert measures["orders.completed_count"]["public"] is False
    assert measures["orders.count"]["title"] == "Shop orders Count"


def test_meta_dimensions_and_segments(full_model):
    orders = by_name(meta(full_model)["cubes"])["orders"]
    dimensions = by_name(orders["dimensions"])
    assert {name: d["type"] for name, d in dimensions.items()} == {
        "orders.id": "number",
        "orders.customer_id": "number",
        "orders.status": "string",
        "orders.amount": "number",
        "orders.created_at": "time",
        "orders.refunded": "boolean",
        "orders.size": "string",
    }
    assert dimensions["orders.id"]["primaryKey"] is True
    assert dimensions["orders.status"]["primaryKey"] is False
    assert dimensions["orders.created_at"]["title"] == "Shop orders Created At"
    assert dimensions["orders.created_at"]["shortTitle"] == "Created At"
    assert "aggType" not in dimensions["orders.status"]
    segments = by_name(orders["segments"])
    assert list(segments) == ["orders.completed", "orders.large"]
    assert segments["orders.completed"]["title"] == "Shop orders Completed"
    assert "type" not in segments["orders.completed"]


def test_meta_views_expose_members_under_the_view_name(full_model):
    view = by_name(meta(full_model)["cubes"])["order_facts"]
    assert (view["type"], view["title"], view["public"]) == ("view", "Order facts", True)
    assert [m["name"] for m in view["measures"]] == ["order_facts.count", "order_facts.revenue"]
    assert [d["name"] for d in view["dimensions"]] == [
        "order_facts.order_status",  # an alias
        "order_facts.customers_name",  # a prefix
        "order_facts.category",
    ]
    assert view["segments"] == []
    revenue = view["measures"][1]
    assert (revenue["title"], revenue["shortTitle"], revenue["aggType"], revenue["format"]) == (
        "Order facts Revenue (net)",
        "Revenue (net)",
        "sum",
        "currency",
    )
    status = view["dimensions"][0]
    assert (status["type"], status["shortTitle"]) == ("string", "Status")
    everything = by_name(meta(full_model)["cubes"])["everything_about_orders"]
    assert everything["public"] is False
    assert [s["name"] for s in everything["segments"]] == [
        "everything_about_orders.completed",
        "everything_about_orders.large",
    ]


def test_summary_has_one_row_per_member_of_cubes_and_views(full_model):
    frame = summary(full_model)
    cube_members = sum(len(c.members) for c in full_model.cubes.values())
    view_members = sum(len(v.members) for v in full_model.views.values())
    assert len(frame) == cube_members + view_members
    row = frame[frame.member == "order_facts.order_status"].iloc[0]
    assert (row.cube, row.kind, row.type, row.title) == (
        "order_facts",
        "dimension",
        "string",
        "Order facts Status",
    )


# -- 5. a real Cube data model, queried over hand-made rows ---------------------------
# tests/fixtures/cube_model/README.md says where the model comes from.

REAL_ROWS = """
CREATE SCHEMA IF NOT EXISTS public;
CREATE TABLE public.orders AS SELECT * FROM (VALUES
  (1, 10, 100, 'completed', TIMESTAMP '2024-01-05'),
  (2, 10, 50, 'processing', TIMESTAMP '2024-01-20'),
  (3, 11, 70, 'completed', TIMESTAMP '2024-02-03'),
  (4, 12, 30, 'shipped', TIMESTAMP '2024-02-15'),
  (5, 11, 25, 'completed', TIMESTAMP '2024-03-01')
) AS t(id, user_id, amount, status, created_at);
CREATE TABLE public.line_items AS SELECT * FROM (VALUES
  (1, 7, 1, 1, 60),
  (2, 8, 1, 2, 20),
  (3, 7, 1, 1, 15),
  (4, 7, 2, 5, 10),
  (5, 7, 3, 1, 70),
  (6, 9, 5, 1, 25),
  (7, 8, 5, 3, 0)
) AS t(id, product_id, order_id, quantity, price);
"""
"""Order 4 has no line items; order 1 has product 7 twice (a join multiplies it)."""


@pytest.fixture
def real_model():
    """The session, with the tables and the model loaded."""
    session = aiser.session()
    for statement in filter(str.strip, REAL_ROWS.split(";")):
        session.sql(statement)
    session.load_model(CUBE_FIXTURE)
    return session


def rows(frame: pd.DataFrame) -> list[tuple]:
    return [
        tuple(None if pd.isna(v) else (float(v) if isinstance(v, int | float) else v) for v in r)
        for r in frame.itertuples(index=False)
    ]


def test_the_real_model_is_kept_as_published():
    files = sorted(p.name for p in CUBE_FIXTURE.iterdir())
    assert files == ["README.md", "orders_and_items_multiplied_pre_agg.yml"]
    readme = (CUBE_FIXTURE / "README.md").read_text(encoding="utf-8")
    assert "cube-js/cube" in readme and "Apache" in readme


def test_the_real_model_loads_and_describes_itself(real_model):
    model = real_model.model
    assert sorted(model.cubes) == ["line_items", "orders"]
    assert model.cubes["orders"].sql_table == "public.orders"
    assert model.cubes["orders"].joins["line_items"].relationship == "one_to_many"
    assert model.cubes["orders"].pre_aggregations[0]["name"] == "pre_agg_with_multiplied_measures"
    cubes = by_name(meta(model)["cubes"])
    assert [m["name"] for m in cubes["orders"]["measures"]] == ["orders.count", "orders.total_qty"]
    assert [d["name"] for d in cubes["line_items"]["dimensions"]] == [
        "line_items.id",
        "line_items.product_id",
        "line_items.order_id",
        "line_items.quantity",
        "line_items.price",
    ]


def test_the_real_model_order_measures_by_line_item_product_are_not_multiplied(real_model):
    got = real_model.query(
        {
            "measures": ["orders.count", "orders.total_qty"],
            "dimensions": ["line_items.product_id"],
            "order": {"line_items.product_id": "asc"},
        }
    )
    expected = real_model.sql(
        """
        SELECT product_id, count(*), sum(amount)
        FROM (
          SELECT DISTINCT o.id, o.amount, li.product_id
          FROM public.orders o LEFT JOIN public.line_items li ON li.order_id = o.id
        ) AS per_order_and_product
        GROUP BY 1 ORDER BY 1 NULLS LAST"""
    ).df
    assert rows(got.df) == rows(expected)
    # worked out by hand too: product 7 is in orders 1, 2, 3 (order 1 twice); order 4 has none
    assert rows(got.df) == [
        (7.0, 3.0, 220.0),
        (8.0, 2.0, 125.0),
        (9.0, 1.0, 25.0),
        (None, 1.0, 30.0),
    ]


def test_the_real_model_by_month_with_a_filter_on_a_computed_dimension(real_model):
    got = real_model.query(
        {
            "measures": ["orders.count", "orders.total_qty"],
            "timeDimensions": [
                {
                    "dimension": "orders.created_at",
                    "granularity": "month",
                    "dateRange": ["2024-01-01", "2024-02-29"],
                }
            ],
            "filters": [
                {"member": "orders.status_new", "operator": "equals", "values": ["completed_new"]}
            ],
        }
    )
    expected = real_model.sql(
        """
        SELECT date_trunc('month', created_at), count(*), sum(amount)
        FROM public.orders
        WHERE status || '_new' = 'completed_new'
          AND created_at >= DATE '2024-01-01' AND created_at < DATE '2024-03-01'
        GROUP BY 1 ORDER BY 1"""
    ).df
    assert list(got.df.columns) == [
        "orders.created_at.month",
        "orders.count",
        "orders.total_qty",
    ]
    got_rows = [(pd.Timestamp(r[0]), *r[1:]) for r in rows(got.df)]
    want_rows = [(pd.Timestamp(r[0]), *r[1:]) for r in rows(expected)]
    assert (
        got_rows
        == want_rows
        == [
            (pd.Timestamp("2024-01-01"), 1.0, 100.0),
            (pd.Timestamp("2024-02-01"), 1.0, 70.0),
        ]
    )


def test_the_real_model_order_measures_by_status(real_model):
    got = real_model.query(
        {
            "measures": ["orders.count", "orders.total_qty"],
            "dimensions": ["orders.status"],
            "order": {"orders.status": "asc"},
        }
    )
    expected = real_model.sql(
        "SELECT status, count(*), sum(amount) FROM public.orders GROUP BY 1 ORDER BY 1"
    ).df
    assert (
        rows(got.df)
        == rows(expected)
        == [
            ("completed", 3.0, 195.0),
            ("processing", 1.0, 50.0),
            ("shipped", 1.0, 30.0),
        ]
    )


def test_the_real_model_loads_into_the_session_and_its_rollup_does_not_multiply(real_model):
    """The model's rollup stores orders.count per (status, product): summing it over
    products for a by-status query would count orders 1 and 5 twice."""
    real_model.load_model(CUBE_FIXTURE)
    got = real_model.query(
        {
            "measures": ["orders.count", "orders.total_qty"],
            "dimensions": ["orders.status"],
            "order": {"orders.status": "asc"},
        }
    )
    assert rows(got.df) == [
        ("completed", 3.0, 195.0),
        ("processing", 1.0, 50.0),
        ("shipped", 1.0, 30.0),
    ]


def test_the_real_model_rollup_answers_its_own_grain_exactly(real_model):
    query = {
        "measures": ["orders.count", "orders.total_qty"],
        "dimensions": ["orders.status", "line_items.product_id"],
        "timeDimensions": [{"dimension": "orders.created_at", "granularity": "month"}],
        "order": [
            ["orders.created_at", "asc"],
            ["orders.status", "asc"],
            ["line_items.product_id", "asc"],
        ],
    }
    served = real_model.query(query)
    assert served.pre_aggregation == "orders.pre_agg_with_multiplied_measures"
    expected = real_model.sql(
        """
        SELECT status, product_id, date_trunc('month', created_at) AS month,
               count(*), sum(amount)
        FROM (SELECT DISTINCT o.id, o.status, o.amount, o.created_at, li.product_id
              FROM public.orders o LEFT JOIN public.line_items li ON li.order_id = o.id)
        GROUP BY 1, 2, 3 ORDER BY 3, 1, 2 NULLS LAST"""
    ).df
    got = served.df[
        [
            "orders.status",
            "line_items.product_id",
            "orders.created_at.month",
            "orders.count",
            "orders.total_qty",
        ]
    ]
    assert rows(got) == rows(expected)
