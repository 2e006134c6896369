-- sql/036's balance_bucket and balance_class, cheaper, with exactly the same values (issue 15:
-- the season end's reset moves every non-zero balance to zero, and the bucket-count trigger
-- computes both functions for the old and the new balance of every moved row: 9% of a reset
-- batch at 1M members). 036's versions were STRICT SQL functions whose body is a CASE, which
-- PostgreSQL never inlines (a CASE is not strict), so each call was a function call of its own
-- that called balance_bit_length, which counts bits through a 64-character text. These are not
-- STRICT (they still give NULL for NULL), so the planner inlines them into the statements that
-- call them, and the bit length is an integer binary search: width_bucket over the powers of
-- two, the number of powers <= m, which is the bit length of every m >= 0 (the callers pass
-- |v| >= 128 only). tests/integration/test_balance_buckets.py compares them with 036's
-- definitions over a wide range of balances, negatives, zero and the bounds included.
-- balance_bucket_end and balance_class_end (read-side, once per query) are left as they were.

CREATE FUNCTION balance_bits(m bigint) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN width_bucket(m, '{1,2,4,8,16,32,64,128,256,512,1024,2048,4096,8192,16384,32768,65536,131072,262144,524288,1048576,2097152,4194304,8388608,16777216,33554432,67108864,134217728,268435456,536870912,1073741824,2147483648,4294967296,8589934592,17179869184,34359738368,68719476736,137438953472,274877906944,549755813888,1099511627776,2199023255552,4398046511104,8796093022208,17592186044416,35184372088832,70368744177664,140737488355328,281474976710656,562949953421312,1125899906842624,2251799813685248,4503599627370496,9007199254740992,18014398509481984,36028797018963968,72057594037927936,144115188075855872,288230376151711744,576460752303423488,1152921504606846976,2305843009213693952,4611686018427387904}'::bigint[]);

CREATE OR REPLACE FUNCTION balance_bucket(v bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN v > -128 AND v < 128 THEN v
    WHEN v > 0 THEN (v >> (balance_bits(v) - 7)) << (balance_bits(v) - 7)
    ELSE 1 - (((-v) >> (balance_bits(-v) - 7)) << (balance_bits(-v) - 7))
           - (1::bigint << (balance_bits(-v) - 7))
END;

CREATE OR REPLACE FUNCTION balance_class(v bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN v >= 0 AND v < 128 THEN 0
    WHEN v < 0 AND v > -128 THEN -127
    WHEN v > 0 THEN 1::bigint << (balance_bits(v) - 1)
    ELSE 1 - (1::bigint << balance_bits(-v))
END;
