"""The PostgreSQL test server itself (fixtures in conftest.py, tests/postgres_server.py):
reachable with a password on 127.0.0.1 only, one fresh database per test, and restarts and
outages that clients survive by reconnecting (``pool_pre_ping``)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url


def test_url_has_password_and_server_listens_on_loopback_only(postgres_url):
    url = make_url(postgres_url)
    assert url.drivername == "postgresql+psycopg"
    assert url.host == "127.0.0.1" and url.password and url.password not in repr(url)
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SHOW listen_addresses")).scalar() == "127.0.0.1"
        assert conn.execute(sa.text("SELECT current_database()")).scalar() == url.database
    engine.dispose()
    with pytest.raises(sa.exc.OperationalError, match="password authentication failed"):
        sa.create_engine(url.set(password="wrong")).connect()


def test_each_test_gets_a_fresh_empty_database(postgres_server, postgres_url):
    other = postgres_server.url_for_new_database()
    assert make_url(other).database != make_url(postgres_url).database
    mine, theirs = sa.create_engine(postgres_url), sa.create_engine(other, pool_pre_ping=True)
    try:
        assert sa.inspect(mine).get_table_names() == []
        with mine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x int)"))
        assert sa.inspect(mine).get_table_names() == ["t"]
        assert sa.inspect(theirs).get_table_names() == []
    finally:
        mine.dispose()
        theirs.connect().close()  # left open on purpose: dropping closes it (WITH FORCE)
    postgres_server.drop_database(other)
    with pytest.raises(sa.exc.OperationalError, match="does not exist"):
        theirs.connect()  # the pooled connection is dead, and the database is gone
    theirs.dispose()


def test_data_survives_a_restart_and_pre_ping_reconnects(postgres_server, postgres_url):
    engine = sa.create_engine(postgres_url, pool_pre_ping=True)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE trials (id int PRIMARY KEY, value float)"))
        conn.execute(sa.text("INSERT INTO trials VALUES (1, 0.5), (2, 0.25)"))
    stale = engine.pool.checkedin()
    assert stale == 1  # a pooled connection that the restart breaks

    postgres_server.restart()

    with engine.connect() as conn:  # the pre-ping finds the broken one and reconnects
        assert conn.execute(sa.text("SELECT sum(value) FROM trials")).scalar() == 0.75
    engine.dispose()


def test_outage_stop_then_start(postgres_server, postgres_url):
    engine = sa.create_engine(postgres_url, pool_pre_ping=True)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t AS SELECT 42 AS x"))
    postgres_server.stop()
    try:
        assert not postgres_server.is_running()
        with pytest.raises(sa.exc.OperationalError):
            engine.connect()
    finally:
        postgres_server.start()
    assert postgres_server.is_running()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT x FROM t")).scalar() == 42
    engine.dispose()

    postgres_server.outage(0.2)  # the blocking form: down for 0.2 s, then up again
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT x FROM t")).scalar() == 42
    engine.dispose()
