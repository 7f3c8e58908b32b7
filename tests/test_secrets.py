"""A password given anywhere never shows up in what a user, a log or the history sees."""

from __future__ import annotations

import logging

import pytest

import aiser_jupyter as aiser
from aiser_jupyter.errors import ConnectionFailed
from aiser_jupyter.security.secrets import redact, redact_url
from tests.conftest import run, run_failing


def test_redact_url_hides_password_and_token_parameters():
    shown = redact_url(
        "postgresql://ann:s3cr3t-pass@db.example:5432/shop?sslmode=require&token=tkn-123"
    )
    assert shown == "postgresql://ann:***@db.example:5432/shop?sslmode=require&token=***"
    assert redact("failed for s3cr3t-pass and tkn-123") == "failed for *** and ***"
    for plain in ("duckdb:///:memory:", "sqlite:////tmp/a.db", "postgresql://ann@db/shop"):
        assert redact_url(plain) == plain


def test_postgres_password_never_shown(ip, pg_server, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    secret = pg_server.password
    run(ip, f"%aiser connect {pg_server.url} --name pg")
    listing = run(ip, "%aiser connections")
    frame = run(ip, f"%%sql pg\nSELECT 1 AS v WHERE '{secret}' <> ''")
    error = run_failing(ip, f"%%sql pg\nSELECT '{secret}' FRM nowhere")
    history = run(ip, "%aiser history")
    outputs = [
        repr(aiser.session().connection("pg")),
        listing.to_string(),
        frame._repr_html_(),
        str(error),
        "".join(error._render_traceback_()),
        history.to_string(),
        capsys.readouterr().out,
        caplog.text,
    ]
    for text in outputs:
        assert secret not in text
    assert "***" in listing.to_string()
    assert "***" in history.to_string()


def test_password_option_and_connection_failure(pg_server):
    url = f"postgresql://{pg_server.user}@127.0.0.1:{pg_server.port}/{pg_server.dbname}"
    connection = aiser.connect(url, name="opt", password=pg_server.password)
    assert pg_server.password not in repr(connection)
    assert aiser.sql("SELECT 1 AS v", "opt").df["v"].tolist() == [1]
    with pytest.raises(ConnectionFailed) as failed:
        aiser.connect(
            url.replace("127.0.0.1", "127.0.0.1:1").replace(f":{pg_server.port}", ""),
            name="down",
            password="never-shown-pw",
        )
    assert "never-shown-pw" not in str(failed.value)


def test_password_from_connections_toml(pg_server, tmp_path):
    home = tmp_path / "aiser-home"
    home.mkdir(exist_ok=True)
    url = f"postgresql://{pg_server.user}@127.0.0.1:{pg_server.port}/{pg_server.dbname}"
    (home / "connections.toml").write_text(
        f'[warehouse]\nurl = "{url}"\npassword = "{pg_server.password}"\n'
    )
    connection = aiser.connect("warehouse")
    assert aiser.sql("SELECT 2 AS v").df["v"].tolist() == [2]
    assert pg_server.password not in repr(connection)
    assert pg_server.password not in aiser.session().sources.connections_frame().to_string()
