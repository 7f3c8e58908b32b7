"""A small governed model over the sample data: customers' region is the tenant."""

from __future__ import annotations

import yaml

import aiser_jupyter.sessions as sessions
from aiser_jupyter.sessions import Session

MODEL = yaml.safe_load(
    """
cubes:
  - name: orders
    sql_table: orders
    joins:
      - name: customers
        relationship: many_to_one
        sql: "{CUBE}.customer_id = {customers.customer_id}"
    measures:
      - {name: count, type: count}
      - {name: revenue, type: sum, sql: revenue}
      - {name: average_order_value, type: number, sql: "{revenue} / NULLIF({count}, 0)"}
    dimensions:
      - {name: order_id, sql: order_id, type: number, primary_key: true}
      - name: status
        sql: status
        meta:
          checks: [not_null, {accepted_values: [completed, returned, cancelled]}]
      - {name: region, sql: "{customers.region}"}
      - {name: order_date, sql: order_date, type: time}
      - name: quantity
        sql: quantity
        type: number
        meta:
          checks: [{range: {min: 1, max: 18}}]
    pre_aggregations:
      - name: by_region
        measures: [count, revenue]
        dimensions: [status, customers.region]
    access_policy:
      - role: "*"
        row_level:
          filters:
            - member: region
              operator: equals
              values: ["{ securityContext.tenant }"]
      - group: admin
        row_level:
          allow_all: true
  - name: customers
    sql_table: customers
    joins:
      - name: orders
        relationship: one_to_many
        sql: "{CUBE}.customer_id = {orders}.customer_id"
    measures:
      - {name: count, type: count}
    dimensions:
      - {name: customer_id, sql: customer_id, type: number, primary_key: true}
      - {name: region, sql: region}
      - {name: segment, sql: segment}
      - {name: email, sql: email, meta: {pii: email}}
      - {name: name, sql: name, meta: {pii: name}}
    access_policy:
      - role: "*"
        member_level:
          excludes: [segment]
        row_level:
          filters:
            - member: region
              operator: equals
              values: ["{ securityContext.tenant }"]
        masking: {email: hash, name: "null"}
      - group: support
        member_level:
          includes: "*"
        row_level:
          filters:
            - {member: region, operator: equals, values: ["{ securityContext.tenant }"]}
        masking: {email: partial}
      - group: admin
        row_level:
          allow_all: true
        masking: {"*": none}
views:
  - name: sales
    cubes:
      - join_path: orders
        includes: [count, revenue, status]
      - join_path: orders.customers
        includes: [region, email]
        prefix: true
"""
)

NORTH = {"user": "ann", "tenant": "North", "groups": []}
SOUTH = {"user": "bob", "tenant": "South", "groups": []}
SUPPORT = {"user": "sue", "tenant": "North", "groups": ["support"]}
ADMIN = {"user": "root", "groups": ["admin"]}


def governed_session() -> Session:
    """The kernel's Session (so magics see it), with the sample data and the governed model."""
    session = Session()
    sessions._session = session
    session.sources.load_sample()
    session.load_model(MODEL)
    return session


def rows(session: Session, sql: str) -> list[tuple]:
    """Hand-written SQL's rows, as tuples, sorted: run on DuckDB itself, as the data's owner
    (the Session under a context would refuse raw SQL, rightly)."""
    return sorted(session.connection().engine.con.execute(sql).fetchall())


def result_rows(result) -> list[tuple]:
    return sorted(tuple(r.values()) for r in result.to_arrow().to_pylist())
