"""The bulk store's array parameters (PostgreSQL): a Python list goes as the text of an array
literal, which must read back as exactly the same strings, whatever they hold."""

from __future__ import annotations

from sqlalchemy import create_engine

from blockwatch.storage.bulk import _pg_ints, _pg_texts

NASTY = ["", " ", "NULL", "null", "a,b", "{x}", '"q"', "back\\slash", "\\", '\\"', "tab\there",
         "line\nbreak", " lead", "trail ", "ünï\u202ecode", "\U0001f600", "https://x.test/?a=1&b={2}",
         "\\u0000"]


def test_text_and_int_array_literals_read_back_as_given(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            cur = conn.connection.driver_connection.cursor()
            cur.execute("SELECT CAST(%(a)s AS text[])", {"a": _pg_texts(NASTY)})
            assert cur.fetchone()[0] == NASTY
            cur.execute("SELECT CAST(%(a)s AS text[])", {"a": _pg_texts([])})
            assert cur.fetchone()[0] == []
            ids = [1, 2**40, 7]
            cur.execute("SELECT CAST(%(a)s AS bigint[])", {"a": _pg_ints(ids)})
            assert cur.fetchone()[0] == ids
    finally:
        engine.dispose()
