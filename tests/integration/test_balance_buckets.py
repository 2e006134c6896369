"""sql/061's balance_bucket and balance_class give exactly sql/036's values (036's definitions,
copied here into the session's temporary schema, are the reference) over every balance of
magnitude below 2^17, both sides of every power of two up to 2^61 and +-(2^62 - 1) (036's balance_class overflows
from -2^62 down), the balance bounds +-10^12
and 200,000 random balances between them; and the planner inlines them (the plan names neither
function), which is what makes them cheap for the bucket-count triggers."""

from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.integration

_REFERENCE = """
CREATE FUNCTION pg_temp.old_bit_length(m bigint) RETURNS int
LANGUAGE sql IMMUTABLE STRICT RETURN length(ltrim(m::bit(64)::text, '0'));
CREATE FUNCTION pg_temp.old_bucket(v bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT
RETURN CASE
    WHEN abs(v) < 128 THEN v
    WHEN v > 0 THEN (v >> (pg_temp.old_bit_length(v) - 7)) << (pg_temp.old_bit_length(v) - 7)
    ELSE 1 - (((-v) >> (pg_temp.old_bit_length(-v) - 7)) << (pg_temp.old_bit_length(-v) - 7))
           - (1::bigint << (pg_temp.old_bit_length(-v) - 7))
END;
CREATE FUNCTION pg_temp.old_class(v bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT
RETURN CASE
    WHEN v >= 0 AND v < 128 THEN 0
    WHEN v < 0 AND v > -128 THEN -127
    WHEN v > 0 THEN 1::bigint << (pg_temp.old_bit_length(v) - 1)
    ELSE 1 - (1::bigint << pg_temp.old_bit_length(-v))
END;
"""

_VALUES = """
CREATE TEMP TABLE vals AS
SELECT v FROM generate_series(-131072, 131072) v
UNION SELECT s * (p + d)
      FROM generate_series(0, 61) e, LATERAL (SELECT (2::numeric ^ e)::bigint AS p) pw,
           generate_series(-1, 1) d, (VALUES (1), (-1)) sign (s)
      WHERE p + d >= 1
UNION SELECT unnest(ARRAY[1000000000000, -1000000000000, 999999999999, -999999999999, 4611686018427387903,
                          -4611686018427387903, 3458764513820540928, -3458764513820540929])
UNION SELECT (random() * 2e12 - 1e12)::bigint FROM generate_series(1, 200000)
"""


def test_the_bucket_functions_equal_the_ones_they_replace(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(_REFERENCE)
        conn.execute(_VALUES)
        n, wrong_bucket, wrong_class, extremes = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE balance_bucket(v) IS DISTINCT FROM pg_temp.old_bucket(v)), "
            "count(*) FILTER (WHERE balance_class(v) IS DISTINCT FROM pg_temp.old_class(v)), "
            "count(*) FILTER (WHERE abs(v) >= 2305843009213693952) FROM vals"
        ).fetchone()
        assert n > 460_000 and extremes >= 4
        assert (wrong_bucket, wrong_class) == (0, 0)
        assert conn.execute("SELECT balance_bucket(NULL), balance_class(NULL)").fetchone() == (None, None)


def test_the_planner_inlines_them(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN (VERBOSE) SELECT balance_bucket(balance), balance_class(balance - 5) FROM points"
            ).fetchall()
        )
        assert "width_bucket" in plan, plan
        assert "balance_bucket" not in plan and "balance_class" not in plan and "balance_bits" not in plan, (
            plan
        )
