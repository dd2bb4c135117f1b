"""`fota-callbacks inbox ... --postgres DSN` and `inbox migrate` as a real process, on a real PostgreSQL."""

from __future__ import annotations

import itertools
import json

import anyio
import pytest

from fota_callbacks.inbox import PostgresInbox
from tests.support.cli_process import cli
from tests.support.harness import free_port
from tests.support.inbox import postgres_server
from tests.support.postgres import PostgresServer
from tests.support.sentinels import SENTINEL_PASSWORD

__all__ = ["postgres_server"]  # a fixture, used below

_tables = itertools.count()


@pytest.fixture
def table() -> str:
    return f"cli{next(_tables)}"


def _with_password(dsn: str) -> str:
    return dsn.replace("postgres@", f"postgres:{SENTINEL_PASSWORD}@")  # trust auth ignores it


def _tables_exist(dsn: str, table: str) -> bool:
    async def look() -> bool:
        async with PostgresInbox(dsn, table=table, create=False) as inbox:
            try:
                await inbox.stats()
            except Exception:
                return False
            return True

    return anyio.run(look)


def test_commands_on_a_database_without_the_tables_exit_2_saying_migrate_creates_them(
    postgres_server: PostgresServer, table: str
) -> None:
    dsn = _with_password(postgres_server.dsn)
    for action in ("stats", "dead", "retry"):
        done = cli("inbox", action, "--postgres", dsn, "--table", table)
        assert done.returncode == 2, done.stderr
        assert f"fota-callbacks inbox migrate --postgres DSN --table {table}" in done.stderr
        assert SENTINEL_PASSWORD not in done.stdout + done.stderr
    assert not _tables_exist(postgres_server.dsn, table)  # nothing was created


def test_migrate_prints_or_applies_the_ddl_and_then_the_commands_work(
    postgres_server: PostgresServer, table: str
) -> None:
    dsn = _with_password(postgres_server.dsn)
    printed = cli("inbox", "migrate", "--postgres", dsn, "--table", table, "--print")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == PostgresInbox.schema(table).strip()
    assert not _tables_exist(postgres_server.dsn, table)  # --print changes nothing

    applied = cli("inbox", "migrate", "--postgres", dsn, "--table", table)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout == f"created the tables {table} and {table}_dedup at 127.0.0.1:{postgres_server.port}\n"
    again = cli("inbox", "migrate", "--postgres", dsn, "--table", table, "--json")
    assert json.loads(again.stdout) == {"table": table, "created": False}

    async def store() -> None:
        async with PostgresInbox(postgres_server.dsn, table=table, create=False) as inbox:
            await inbox.put(b'{"type": "upgradeProgress", "n": 1}')

    anyio.run(store)
    stats = cli("inbox", "stats", "--postgres", dsn, "--table", table, "--json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["pending"] == 1
    for done in (printed, applied, again, stats):
        assert SENTINEL_PASSWORD not in done.stdout + done.stderr


def test_an_unreachable_database_exits_4_without_the_password() -> None:
    dsn = f"postgresql://fota:{SENTINEL_PASSWORD}@127.0.0.1:{free_port()}/app"
    done = cli("inbox", "stats", "--postgres", dsn)
    assert done.returncode == 4, done.stderr
    assert "the Postgres inbox 'fota_inbox' at 127.0.0.1:" in done.stderr
    assert SENTINEL_PASSWORD not in done.stdout + done.stderr


def test_migrate_and_print_are_refused_where_they_mean_nothing(tmp_path: object) -> None:
    refused = cli("inbox", "migrate", "--redis", "redis://127.0.0.1:1/0")
    assert refused.returncode == 2
    assert "only a PostgresInbox (--postgres DSN)" in refused.stderr
    printed = cli("inbox", "stats", "--postgres", "postgresql://127.0.0.1/app", "--print")
    assert printed.returncode == 2
    assert "--print: only `migrate` takes it" in printed.stderr
    bad = cli("inbox", "migrate", "--postgres", "postgresql://127.0.0.1/app", "--table", "no-dashes", "--print")
    assert bad.returncode == 2
    assert "table" in bad.stderr
