"""The PostgreSQL the API tests use is a real server: SQL semantics, constraints, auth."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.services import PostgresServer

pytestmark = pytest.mark.postgres


async def test_transactions_and_constraints_behave_like_postgres(
    postgres_server: PostgresServer,
) -> None:
    engine = create_async_engine(postgres_server.url())
    try:
        async with engine.begin() as conn:
            version = (await conn.execute(sa.text("SHOW server_version_num"))).scalar_one()
            assert int(version) >= 130000
            await conn.execute(sa.text("CREATE TABLE probe (id int PRIMARY KEY, note text)"))
            await conn.execute(sa.text("INSERT INTO probe VALUES (1, 'kept')"))

        # A failed transaction rolls back as a whole: the duplicate key aborts both inserts.
        with pytest.raises(IntegrityError):  # noqa: PT012 - the whole transaction is the subject
            async with engine.begin() as conn:
                await conn.execute(sa.text("INSERT INTO probe VALUES (2, 'rolled back')"))
                await conn.execute(sa.text("INSERT INTO probe VALUES (1, 'duplicate')"))

        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT id, note FROM probe ORDER BY id"))).all()
        assert [tuple(row) for row in rows] == [(1, "kept")]
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP TABLE IF EXISTS probe"))
        await engine.dispose()


async def test_wrong_password_is_refused(postgres_server: PostgresServer) -> None:
    url = postgres_server.url().replace(postgres_server.password, "not-the-password")
    engine = create_async_engine(url)
    try:
        with pytest.raises(DBAPIError, match="password authentication failed"):
            async with engine.connect():
                pass
    finally:
        await engine.dispose()
