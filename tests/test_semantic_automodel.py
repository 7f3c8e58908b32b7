"""auto_model: a starting Cube model from a real DuckDB (and PostgreSQL) schema."""

from __future__ import annotations

import pytest
import yaml

import aiser_jupyter as aiser
from aiser_jupyter.errors import UnknownConnection
from aiser_jupyter.semantic.automodel import auto_model, auto_model_yaml
from aiser_jupyter.sessions import Session


@pytest.fixture
def session() -> Session:
    session = aiser.session()
    session.sources.load_sample()
    return session


@pytest.fixture
def cubes(session) -> dict[str, dict]:
    return {c["name"]: c for c in auto_model(session.connection())["cubes"]}


def members(cube: dict, kind: str) -> dict[str, dict]:
    return {m["name"]: m for m in cube[kind]}


def primary_keys(cube: dict) -> list[str]:
    return [d["name"] for d in cube["dimensions"] if d.get("primary_key")]


def test_one_cube_per_sample_table_with_its_primary_key(cubes):
    assert list(cubes) == ["customers", "orders", "products"]
    assert {name: primary_keys(c) for name, c in cubes.items()} == {
        "customers": ["customer_id"],
        "orders": ["order_id"],
        "products": ["product_id"],
    }
    orders = cubes["orders"]
    assert orders["sql_table"] == "orders"
    assert orders["title"] == "Orders"
    assert "data_source" not in orders  # the embedded DuckDB is the default source
    assert "meta" not in orders
    assert members(orders, "dimensions")["order_id"]["type"] == "number"


def test_orders_join_customers_and_products(cubes):
    assert cubes["orders"]["joins"] == [
        {
            "name": "customers",
            "relationship": "many_to_one",
            "sql": "{CUBE}.customer_id = {customers}.customer_id",
        },
        {
            "name": "products",
            "relationship": "many_to_one",
            "sql": "{CUBE}.product_id = {products}.product_id",
        },
    ]
    assert "joins" not in cubes["customers"]
    assert "joins" not in cubes["products"]


def test_measures_and_dimensions(cubes):
    measures = members(cubes["orders"], "measures")
    assert measures["count"] == {"name": "count", "type": "count", "title": "Count"}
    assert measures["revenue_sum"] == {
        "name": "revenue_sum",
        "sql": "{CUBE}.revenue",
        "type": "sum",
        "format": "currency",
        "title": "Total Revenue",
    }
    assert measures["unit_price_avg"]["type"] == "avg"
    assert measures["unit_price_avg"]["format"] == "currency"
    assert measures["quantity_sum"]["type"] == "sum"
    assert "format" not in measures["quantity_sum"]
    assert "format" not in measures["discount_avg"]
    # keys are not summed
    assert not {"order_id_sum", "customer_id_sum", "product_id_avg"} & set(measures)
    assert "unit_cost_sum" in members(cubes["products"], "measures")

    dimensions = members(cubes["orders"], "dimensions")
    assert list(dimensions) == [
        "order_id",
        "order_date",
        "customer_id",
        "product_id",
        "quantity",
        "unit_price",
        "discount",
        "revenue",
        "status",
    ]
    assert dimensions["order_date"] == {
        "name": "order_date",
        "sql": "{CUBE}.order_date",
        "type": "time",
        "title": "Order Date",
    }
    assert dimensions["status"]["type"] == "string"
    assert dimensions["revenue"]["type"] == "number"
    assert dimensions["customer_id"]["title"] == "Customer ID"
    assert members(cubes["customers"], "dimensions")["signup_date"]["type"] == "time"


def test_a_repeated_or_null_id_is_not_a_primary_key(session):
    session.sql(
        "CREATE TABLE visits AS SELECT range % 50 AS id, range AS visit_id, "
        "CASE WHEN range > 0 THEN range END AS session_id FROM range(100)"
    )
    session.sql("CREATE TABLE events AS SELECT range % 50 AS id, range AS event_id FROM range(100)")
    session.sql("UPDATE events SET event_id = NULL WHERE event_id = 3")
    session.sql("CREATE TABLE logs AS SELECT range % 50 AS id, 'x' AS line FROM range(100)")
    cubes = {
        c["name"]: c
        for c in auto_model(session.connection(), ["visits", "events", "logs"])["cubes"]
    }
    assert primary_keys(cubes["visits"]) == ["visit_id"]
    assert primary_keys(cubes["events"]) == []
    assert cubes["events"]["meta"] == {"note": "no primary key found"}
    assert primary_keys(cubes["logs"]) == []


def test_uniqueness_is_checked_on_the_whole_table_not_the_sample(session):
    session.sql("CREATE TABLE tickets AS SELECT range AS id FROM range(1000)")
    session.sql("INSERT INTO tickets VALUES (7)")
    (cube,) = auto_model(session.connection(), ["tickets"], sample_rows=10)["cubes"]
    assert primary_keys(cube) == []
    session.sql("DELETE FROM tickets WHERE id = 7")
    (cube,) = auto_model(session.connection(), ["tickets"], sample_rows=10)["cubes"]
    assert primary_keys(cube) == ["id"]


def test_id_named_keys_join_plural_tables(session):
    session.sql("CREATE TABLE categories (id INTEGER, name VARCHAR)")
    session.sql("INSERT INTO categories VALUES (1, 'a'), (2, 'b')")
    session.sql("CREATE TABLE items (id INTEGER, category_id INTEGER, price DOUBLE)")
    session.sql("INSERT INTO items VALUES (1, 1, 2.0), (2, 1, 3.0)")
    cubes = {
        c["name"]: c for c in auto_model(session.connection(), ["categories", "items"])["cubes"]
    }
    assert cubes["items"]["joins"] == [
        {
            "name": "categories",
            "relationship": "many_to_one",
            "sql": "{CUBE}.category_id = {categories}.id",
        }
    ]


def test_tables_limits_the_model_and_its_joins(session):
    (orders,) = auto_model(session.connection(), tables=["orders"])["cubes"]
    assert orders["name"] == "orders"
    assert "joins" not in orders  # no cube to join to
    model = auto_model(session.connection(), tables=["main.orders", "customers"])
    assert [c["name"] for c in model["cubes"]] == ["orders", "customers"]
    assert [j["name"] for j in model["cubes"][0]["joins"]] == ["customers"]
    with pytest.raises(UnknownConnection, match="nope"):
        auto_model(session.connection(), tables=["nope"])


def test_awkward_names_are_quoted_and_schemas_kept(session):
    session.sql('CREATE TABLE "Order Items" ("Item ID" INTEGER, "Weird Col" DOUBLE, "order" TEXT)')
    session.sql("INSERT INTO \"Order Items\" VALUES (1, 2.5, 'a'), (2, 3.5, 'b')")
    session.sql("CREATE SCHEMA crm")
    session.sql(
        "CREATE TABLE crm.customers (customer_id INTEGER, flag BOOLEAN, seen_at TIMESTAMPTZ)"
    )
    (items,) = auto_model(session.connection(), ["Order Items"])["cubes"]
    assert (items["name"], items["title"]) == ("order_items", "Order Items")
    assert items["sql_table"] == '"Order Items"'
    assert primary_keys(items) == ["item_id"]
    dimensions = members(items, "dimensions")
    assert dimensions["weird_col"]["sql"] == '{CUBE}."Weird Col"'
    assert dimensions["order"]["sql"] == '{CUBE}."order"'
    assert members(items, "measures")["weird_col_sum"]["sql"] == '{CUBE}."Weird Col"'

    cubes = {c["name"]: c for c in auto_model(session.connection(), ["customers"])["cubes"]}
    assert cubes["customers"]["sql_table"] == "customers"  # main keeps the plain name
    assert cubes["crm_customers"]["sql_table"] == "crm.customers"
    assert {d["name"]: d["type"] for d in cubes["crm_customers"]["dimensions"]} == {
        "customer_id": "number",
        "flag": "boolean",
        "seen_at": "time",
    }


def test_other_connections_name_their_data_source(session):
    from aiser_jupyter.engines.connection import Connection

    duck = session.connection()
    warehouse = Connection("warehouse", duck.engine, "duckdb://")
    (cube,) = auto_model(warehouse, ["products"])["cubes"]
    assert cube["data_source"] == "warehouse"


def test_yaml_round_trips_with_a_header(session):
    text = auto_model_yaml(session.connection())
    assert text.startswith("# Generated by aiser_jupyter")
    assert "edit" in text.splitlines()[1]
    assert yaml.safe_load(text) == auto_model(session.connection())
    assert auto_model_yaml(session.connection(), ["orders"], sample_rows=5).count("- name: ") > 1


def test_postgres_declared_keys_are_used(pg_server, pg_url):
    pg_server.psql(
        """
        DROP SCHEMA IF EXISTS automodel CASCADE;
        CREATE SCHEMA automodel;
        CREATE TABLE automodel.buyers (code text PRIMARY KEY, name text);
        CREATE TABLE automodel.sales (
            sale_no int PRIMARY KEY, buyer text REFERENCES automodel.buyers(code),
            amount numeric(10,2), sold_at timestamp, note varchar(20));
        INSERT INTO automodel.buyers VALUES ('a', 'A'), ('b', 'B');
        INSERT INTO automodel.sales VALUES (1, 'a', 2.5, now(), 'x'), (2, 'a', 1.0, now(), 'y');
        """
    )
    try:
        connection = aiser.connect(pg_url, name="pg")
        tables = ["automodel.buyers", "automodel.sales"]
        cubes = {c["name"]: c for c in auto_model(connection, tables)["cubes"]}
    finally:
        pg_server.psql("DROP SCHEMA automodel CASCADE")
    buyers, sales = cubes["buyers"], cubes["sales"]
    assert (buyers["sql_table"], buyers["data_source"]) == ("automodel.buyers", "pg")
    assert primary_keys(buyers) == ["code"]
    assert members(buyers, "dimensions")["code"]["type"] == "string"
    assert primary_keys(sales) == ["sale_no"]
    assert sales["joins"] == [
        {"name": "buyers", "relationship": "many_to_one", "sql": "{CUBE}.buyer = {buyers}.code"}
    ]
    measures = members(sales, "measures")
    assert measures["amount_sum"]["format"] == "currency"
    dimensions = {d["name"]: d["type"] for d in sales["dimensions"]}
    assert dimensions == {
        "sale_no": "number",
        "buyer": "string",
        "amount": "number",
        "sold_at": "time",
        "note": "string",
    }
