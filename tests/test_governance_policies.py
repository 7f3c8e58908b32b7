"""Access policies: tenants see only their rows, hidden members are refused, personal data
shows masked; checked against hand-written SQL on the sample data."""

from __future__ import annotations

import hashlib

import pytest
from conftest import run, run_failing
from governance_model import (
    ADMIN,
    MODEL,
    NORTH,
    SOUTH,
    SUPPORT,
    governed_session,
    result_rows,
    rows,
)

from aiser_jupyter.config import home
from aiser_jupyter.security.context import AccessDenied, SecurityContext
from aiser_jupyter.semantic.build import load_model
from aiser_jupyter.semantic.loader import ModelError
from aiser_jupyter.semantic.meta import meta

BY_STATUS = {"measures": ["orders.revenue", "orders.count"], "dimensions": ["orders.status"]}
HAND_BY_STATUS = """
    SELECT o.status, round(sum(o.revenue), 2), count(*) FROM orders o
    JOIN customers c USING (customer_id) WHERE c.region = '{tenant}' GROUP BY 1"""


@pytest.fixture
def gov():
    return governed_session()


def rounded(result) -> list[tuple]:
    return [(s, round(r, 2), n) for s, r, n in result_rows(result)]


@pytest.mark.parametrize("user", [NORTH, SOUTH])
def test_each_tenant_gets_its_own_numbers(gov, user):
    gov.governance.set_context(user)
    expected = rows(gov, HAND_BY_STATUS.format(tenant=user["tenant"]))
    assert rounded(gov.query(BY_STATUS)) == expected
    assert rounded(gov.query(BY_STATUS, context=user)) == expected


def test_a_request_context_overrides_the_sessions(gov):
    gov.governance.set_context(NORTH)
    south = rows(gov, HAND_BY_STATUS.format(tenant="South"))
    assert rounded(gov.query(BY_STATUS, context=SecurityContext(tenant="South"))) == south
    assert gov.security_context.tenant == "North"


def test_no_row_of_another_tenant_in_a_listing(gov):
    gov.governance.set_context(SOUTH)
    listing = {
        "dimensions": ["customers.customer_id", "customers.region"],
        "ungrouped": True,
        "limit": None,
    }
    got = result_rows(gov.query(listing))
    assert got == rows(gov, "SELECT customer_id, region FROM customers WHERE region = 'South'")
    assert {region for _, region in got} == {"South"}


def test_orders_alone_are_filtered_through_the_join(gov):
    """A query naming no customers member still reads only the tenant's orders."""
    gov.governance.set_context(NORTH)
    result = gov.query({"measures": ["orders.count"]})
    expected = rows(
        gov, "SELECT count(*) FROM orders JOIN customers USING (customer_id) WHERE region='North'"
    )
    assert result_rows(result) == expected


def test_a_view_is_filtered_like_its_cubes(gov):
    gov.governance.set_context(NORTH)
    result = gov.query({"measures": ["sales.count"], "dimensions": ["sales.customers_region"]})
    expected = rows(
        gov,
        "SELECT region, count(*) FROM orders JOIN customers USING (customer_id)"
        " WHERE region = 'North' GROUP BY 1",
    )
    assert result_rows(result) == expected


def test_a_rollup_never_answers_past_a_tenant_filter(gov):
    query = {"measures": ["orders.revenue"], "dimensions": ["customers.region"]}
    admin = gov.query(query, context=ADMIN)
    assert admin.pre_aggregation == "orders.by_region"
    assert len(admin) == 4
    tenant = gov.query(query, context=NORTH)
    assert [r[0] for r in result_rows(tenant)] == ["North"]


def test_admin_sees_every_tenant(gov):
    gov.governance.set_context(ADMIN)
    hand = rows(gov, "SELECT status, round(sum(revenue), 2), count(*) FROM orders GROUP BY 1")
    assert rounded(gov.query(BY_STATUS)) == hand


def test_a_policy_model_without_a_context_is_closed(gov):
    """No requester, no tenant: the tenant filter cannot be bound, so nothing is shown."""
    with pytest.raises(AccessDenied, match="tenant"):
        gov.query(BY_STATUS)


def test_excluded_member_refused_and_included_for_another_group(gov):
    gov.governance.set_context(NORTH)
    with pytest.raises(AccessDenied, match=r"customers\.segment is not visible to user=ann"):
        gov.query({"measures": ["customers.count"], "dimensions": ["customers.segment"]})
    with pytest.raises(AccessDenied, match="segment"):
        gov.semantic.query_sql(
            {
                "measures": ["customers.count"],
                "filters": [
                    {"member": "customers.segment", "operator": "equals", "values": ["smb"]}
                ],
            }
        )
    gov.governance.set_context(SUPPORT)
    result = gov.query({"measures": ["customers.count"], "dimensions": ["customers.segment"]})
    expected = rows(
        gov, "SELECT segment, count(*) FROM customers WHERE region = 'North' GROUP BY 1"
    )
    assert result_rows(result) == expected


def test_a_cube_no_policy_matches_is_closed():
    closed = {
        "cubes": [
            {
                "name": "customers",
                "sql_table": "customers",
                "dimensions": [{"name": "region", "sql": "region"}],
                "access_policy": [{"group": "admin"}],
            }
        ]
    }
    session = governed_session()
    session.load_model(closed)
    with pytest.raises(AccessDenied, match="no access to 'customers'"):
        session.query({"dimensions": ["customers.region"]}, context=NORTH)
    assert len(session.query({"dimensions": ["customers.region"]}, context=ADMIN)) == 4


def test_masking_hash_null_and_partial(gov):
    listing = {
        "dimensions": ["customers.customer_id", "customers.email", "customers.name"],
        "limit": None,
    }
    raw = {
        cid: (email, name)
        for cid, email, name in rows(
            gov, "SELECT customer_id, email, name FROM customers WHERE region = 'North'"
        )
    }
    result = gov.query(listing, context=NORTH)
    hashed = result_rows(result)
    salt = (home() / "mask.salt").read_text().strip()
    assert len(hashed) == len(raw) and len(salt) == 32
    for cid, email, name in hashed:
        assert email == hashlib.md5((salt + raw[cid][0]).encode()).hexdigest()
        assert name is None
    assert salt not in result.sql and salt not in gov.semantic.query_sql(listing, context=NORTH)
    assert result_rows(gov.query(listing, context=NORTH)) == hashed  # stable
    partial = result_rows(gov.query(listing, context=SUPPORT))
    for cid, email, _ in partial:
        local, domain = raw[cid][0].split("@")
        assert email == f"{local[0]}***@{domain}"
        assert local[1:] not in email
    clear = result_rows(gov.query(listing, context=ADMIN))
    north = [r for r in clear if r[0] in raw]
    assert [(e, n) for _, e, n in north] == [raw[c] for c, _, _ in north]


def test_masking_through_a_view_and_in_the_annotation(gov):
    result = gov.query({"dimensions": ["sales.customers_email"], "limit": 5}, context=NORTH)
    assert all(len(v) == 32 and "@" not in v for v in result.df["sales.customers_email"])
    assert result.annotation["dimensions"]["sales.customers_email"]["meta"]["masked"] == "hash"
    assert any("masked" in note for note in result.notes)


def test_masked_members_cannot_be_filtered_on(gov):
    with pytest.raises(AccessDenied, match="masked personal data"):
        gov.query(
            {
                "measures": ["customers.count"],
                "filters": [
                    {"member": "customers.email", "operator": "equals", "values": ["a@b.c"]}
                ],
            },
            context=NORTH,
        )


def test_claims_become_a_context(gov):
    claims = {"sub": "ann", "tenant": "North", "roles": ["support"], "exp": 1}
    context = SecurityContext.from_claims(claims)
    assert (context.user, context.tenant, context.groups) == ("ann", "North", ("support",))
    assert context.value("exp") == 1
    assert rounded(gov.query(BY_STATUS, context=claims)) == rows(
        gov, HAND_BY_STATUS.format(tenant="North")
    )


def test_the_hub_user_is_a_context(monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    assert SecurityContext.from_environment() is None
    monkeypatch.setenv("JUPYTERHUB_USER", "ann")
    assert SecurityContext.from_environment() == SecurityContext(user="ann")


def test_list_values_from_the_context(gov):
    """A filter value naming a list in the context expands to all of its items."""
    model = dict(MODEL)
    model["cubes"] = [dict(c) for c in MODEL["cubes"]]
    model["cubes"][1]["access_policy"] = [
        {
            "role": "*",
            "row_level": {
                "filters": [
                    {
                        "member": "region",
                        "operator": "equals",
                        "values": ["{ securityContext.regions }"],
                    }
                ]
            },
        }
    ]
    gov.load_model(model)
    context = SecurityContext(user="x", tenant="North", attributes={"regions": ["East", "West"]})
    result = gov.query(
        {"measures": ["customers.count"], "dimensions": ["customers.region"]}, context=context
    )
    assert result_rows(result) == rows(
        gov,
        "SELECT region, count(*) FROM customers WHERE region IN ('East', 'West') GROUP BY 1",
    )


def test_bad_policies_are_model_errors():
    bad = {"cubes": [dict(MODEL["cubes"][1])]}
    bad["cubes"][0]["joins"] = []
    bad["cubes"][0]["access_policy"] = [{"group": "x", "member_level": {"excludes": ["nope"]}}]
    with pytest.raises(ModelError, match="unknown member 'nope'"):
        load_model(bad)
    bad["cubes"][0]["access_policy"] = [{"group": "x", "masking": {"email": "scramble"}}]
    with pytest.raises(ModelError, match="unknown masking 'scramble'"):
        load_model(bad)
    bad["cubes"][0]["access_policy"] = [{"member_level": {}}]
    with pytest.raises(ModelError, match="needs 'role'"):
        load_model(bad)


def test_query_magic_runs_under_the_context(gov, ip):
    gov.governance.set_context(SOUTH)
    frame = run(ip, '%%query\n{"measures": ["orders.count"], "dimensions": ["customers.region"]}')
    assert list(frame["customers.region"]) == ["South"]
    error = run_failing(ip, '%%query\n{"dimensions": ["customers.segment"]}')
    assert isinstance(error, AccessDenied)


def test_the_offline_agent_answers_within_the_tenant(gov):
    gov.governance.set_context(
        SUPPORT
    )  # sees every member; ann's hidden segment needs the agent's wiring
    answer = gov.ask("revenue by region", offline=True)
    assert set(answer.result.df.iloc[:, 0]) == {"North"}


def test_raw_sql_is_refused_to_a_restricted_requester(gov):
    gov.governance.check_raw_access()  # the owner: allowed
    gov.governance.set_context(NORTH)
    with pytest.raises(AccessDenied, match="semantic model only"):
        gov.governance.check_raw_access()
    gov.governance.set_context(user="ann", tenant="North", raw_sql=True)
    gov.governance.check_raw_access()


def test_meta_lists_only_what_the_requester_may_query(gov):
    def members(meta, cube):
        entry = next(c for c in meta["cubes"] if c["name"] == cube)
        return {m["name"] for kind in ("measures", "dimensions") for m in entry[kind]}

    assert "customers.segment" not in members(meta(gov.model, NORTH), "customers")
    assert "customers.email" in members(meta(gov.model, NORTH), "customers")
    assert "customers.segment" in members(meta(gov.model, SUPPORT), "customers")
    assert "customers.segment" not in members(meta(gov.model), "customers")
    assert "customers.segment" in members(meta(gov.model, ADMIN), "customers")
    view = next(c for c in meta(gov.model, NORTH)["cubes"] if c["name"] == "sales")
    assert {m["name"] for m in view["dimensions"]} == {
        "sales.status",
        "sales.customers_region",
        "sales.customers_email",
    }


def test_totals_and_compared_ranges_stay_within_the_tenant(gov):
    listing = {"dimensions": ["customers.customer_id"], "limit": 5, "total": True}
    result = gov.query(listing, context=SOUTH)
    ((south,),) = rows(gov, "SELECT count(*) FROM customers WHERE region = 'South'")
    assert (len(result), result.total) == (5, south)
    compared = gov.query(
        {
            "measures": ["orders.count"],
            "timeDimensions": [
                {
                    "dimension": "orders.order_date",
                    "compareDateRange": [
                        ["2023-01-01", "2023-12-31"],
                        ["2024-01-01", "2024-12-31"],
                    ],
                }
            ],
        },
        context=SOUTH,
    )
    expected = rows(
        gov,
        "SELECT count(*), year(order_date) FROM orders JOIN customers USING (customer_id)"
        " WHERE region = 'South' GROUP BY 2",
    )
    assert sorted(r[0] for r in result_rows(compared)) == sorted(n for n, _ in expected)
