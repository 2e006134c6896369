"""The ledger's bulk write path as it was before sql/061-062, put back in a bench's own database
so a bench can measure it beside today's in the same run:

- sql/036's balance_bucket and balance_class (STRICT SQL functions that are not inlined, the bit
  length counted through a text), in place of sql/061's;
- sql/047's window trigger and sql/052's webhook trigger once per entry (their functions are
  still in the schema), in place of sql/062's statement triggers.

`per_row_triggers(conn)` creates the two per-row triggers disabled, under names of their own, so
a bench can switch between the two ways with `use(conn, before=...)`; `restore(conn)` puts the
whole path back as it was (functions too) for a database used for the reference only.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

WINDOW_ROW = "bench_window_scores_per_row"
WEBHOOKS_ROW = "bench_webhooks_per_row"

_BUCKETS_036 = """
CREATE OR REPLACE FUNCTION balance_bucket(v bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE
    WHEN abs(v) < 128 THEN v
    WHEN v > 0 THEN (v >> (balance_bit_length(v) - 7)) << (balance_bit_length(v) - 7)
    ELSE 1 - (((-v) >> (balance_bit_length(-v) - 7)) << (balance_bit_length(-v) - 7))
           - (1::bigint << (balance_bit_length(-v) - 7))
END;
CREATE OR REPLACE FUNCTION balance_class(v bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE
    WHEN v >= 0 AND v < 128 THEN 0
    WHEN v < 0 AND v > -128 THEN -127
    WHEN v > 0 THEN 1::bigint << (balance_bit_length(v) - 1)
    ELSE 1 - (1::bigint << balance_bit_length(-v))
END;
"""


def buckets(conn: psycopg.Connection, *, before: bool) -> None:
    """sql/036's bucket functions (`before`) or sql/061's (today's)."""
    if before:
        conn.execute(_BUCKETS_036)
        return
    text = (Path(__file__).resolve().parents[1] / "sql" / "061_balance_bucket_inline.sql").read_text()
    conn.execute(text.replace("CREATE FUNCTION balance_bits", "CREATE OR REPLACE FUNCTION balance_bits"))


def per_row_triggers(conn: psycopg.Connection) -> None:
    """047's and 052's per-row triggers beside 062's, created disabled."""
    conn.execute(
        f"CREATE TRIGGER {WINDOW_ROW} AFTER INSERT ON transactions FOR EACH ROW "
        "WHEN (NEW.source <> 'season_reset') EXECUTE FUNCTION transactions_window_scores()"
    )
    conn.execute(
        f"CREATE TRIGGER {WEBHOOKS_ROW} AFTER INSERT ON transactions FOR EACH ROW "
        "EXECUTE FUNCTION transactions_webhooks()"
    )
    conn.execute(f"ALTER TABLE transactions DISABLE TRIGGER {WINDOW_ROW}, DISABLE TRIGGER {WEBHOOKS_ROW}")


def use(conn: psycopg.Connection, *, before: bool, window: bool = True) -> None:
    """Today's statement triggers (`before` False) or the per-row ones; `window` False leaves
    the window trigger of either kind off (the webhook trigger stays)."""
    on, off = ("ENABLE", "DISABLE")
    conn.execute(
        "ALTER TABLE transactions "
        f"{on if window and not before else off} TRIGGER transactions_window_scores, "
        f"{on if window and before else off} TRIGGER {WINDOW_ROW}, "
        f"{off if before else on} TRIGGER transactions_webhooks, "
        f"{on if before else off} TRIGGER {WEBHOOKS_ROW}"
    )


def restore(conn: psycopg.Connection) -> None:
    """The database's write path as before sql/061-062 (for a database of the reference only)."""
    buckets(conn, before=True)
    per_row_triggers(conn)
    use(conn, before=True)
