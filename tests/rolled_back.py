"""An engine whose every transaction is a SAVEPOINT inside one transaction the test rolls back.

lib opens its own sessions and transactions from the engine it is given (``lib.db.write``,
``transaction``, ``read_session``), so SQLAlchemy's "join the session into an external
transaction" recipe cannot be applied from outside. Instead this engine is ``lib.db.make_engine``'s
own engine (its events, limits and write gate) with two changes:

- its pool hands out one database connection, opened once, inside a transaction begun here;
- the dialect's begin/commit/rollback become SAVEPOINT / RELEASE / ROLLBACK TO on that
  connection, so lib's commits and rollbacks behave as usual for everything the test reads
  through this engine, and nothing ever reaches the database for good.

Only for tests whose work stays on this engine, on the test's own thread: commits are never
seen by another connection, a thread or a subprocess. Those tests keep a database copy (see
``committed`` in tests/conftest.py). Two things a rollback does not undo, so no test may rely on
them: PostgreSQL sequences (ids keep counting from test to test) and the clock inside the
transaction (``now()`` would stay at the test's start; lib takes the time from Python).
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.pool import StaticPool

from lib import db as lib_db


def _run(dbapi_connection, sql: str) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


class RolledBack:
    """``engine`` for one test; ``close()`` rolls everything back and closes the connection."""

    def __init__(self, url: str):
        engine = lib_db.make_engine(url)
        pool = engine.pool
        engine.pool = StaticPool(
            creator=pool._creator,
            # No reset when a connection goes back: lib's connections end their transactions
            # themselves, and a reset would roll back the savepoint of an enclosing session.
            reset_on_return=None,
            _dispatch=pool.dispatch,
            dialect=pool._dialect,
        )
        pool.dispose()
        self.sqlite = engine.dialect.name == "sqlite"
        if self.sqlite and event.contains(engine, "begin", lib_db._sqlite_on_begin):
            # It starts a real transaction (BEGIN IMMEDIATE); here every begin is a savepoint.
            event.remove(engine, "begin", lib_db._sqlite_on_begin)
        self.savepoints: list[str] = []
        self.serial = 0
        self.engine = engine
        # The one connection, held for the whole test. Opening it lets SQLAlchemy look at the
        # server first, with real transactions.
        self.fairy = engine.raw_connection()
        if self.sqlite:  # the sqlite3 module is in autocommit mode here (lib.db)
            _run(self.fairy.dbapi_connection, "BEGIN")
        else:  # psycopg opens the transaction with the first statement
            _run(self.fairy.dbapi_connection, "SELECT 1")
        dialect = engine.dialect
        dialect.do_begin = self._begin
        dialect.do_commit = self._commit
        dialect.do_rollback = self._rollback

    def _begin(self, dbapi_connection) -> None:
        self.serial += 1
        name = f"cd_test_{self.serial}"
        _run(dbapi_connection, f"SAVEPOINT {name}")
        self.savepoints.append(name)

    def _innermost(self) -> str:
        if not self.savepoints:
            raise RuntimeError(
                "a transaction ended that this engine never began: the test interleaves "
                "transactions as separate connections would; mark it `committed`"
            )
        return self.savepoints.pop()

    def _commit(self, dbapi_connection) -> None:
        _run(dbapi_connection, f"RELEASE SAVEPOINT {self._innermost()}")

    def _rollback(self, dbapi_connection) -> None:
        name = self._innermost()
        _run(dbapi_connection, f"ROLLBACK TO SAVEPOINT {name}")
        _run(dbapi_connection, f"RELEASE SAVEPOINT {name}")

    def close(self) -> None:
        dbapi_connection = self.fairy.dbapi_connection
        if self.sqlite:
            _run(dbapi_connection, "ROLLBACK")
        else:
            dbapi_connection.rollback()
        self.savepoints.clear()
        self.fairy.close()
        self.engine.dispose()
