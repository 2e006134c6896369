"""A range of member keys (guild_id, user_id), from just after `after` up to and including
`upto`, as a WHERE clause whose index scan stops at the end of the range.

The row comparison `(guild_id, user_id) > (a, b) AND (guild_id, user_id) <= (c, d)` alone
selects the right rows, but before PostgreSQL 18 a btree scan treats only the first column of
a row comparison as a bound it may stop at: once the scan is past `d` inside guild `c` it goes
on reading index entries to the end of the guild, and past it to the end of the index, filtering
every one out. The achievement sweep read its batches that way, so each batch of 1,000 members
read every member after it (1M members: 1,000 batches of up to 1M index entries each). Here a
range inside one guild is an equality on the guild and two plain bounds on the user, and a range
across guilds also carries `guild_id <= c`, so a scan reads at most to the end of guild `c`
(tests/integration/test_achievements.py checks the pages a scan reads).
"""

from __future__ import annotations


def member_key_range(alias: str, after: tuple[int, int], upto: tuple[int, int]) -> tuple[str, dict]:
    """(SQL, params) of `(alias.guild_id, alias.user_id) > after AND ... <= upto`; the params are
    named range_*, to merge into the caller's."""
    a = alias
    if after[0] == upto[0]:
        sql = f"{a}.guild_id = %(range_g)s AND {a}.user_id > %(range_after_u)s AND {a}.user_id <= %(range_upto_u)s"
        return sql, {"range_g": after[0], "range_after_u": after[1], "range_upto_u": upto[1]}
    sql = (
        f"{a}.guild_id >= %(range_after_g)s AND {a}.guild_id <= %(range_upto_g)s "
        f"AND ({a}.guild_id, {a}.user_id) > (%(range_after_g)s, %(range_after_u)s) "
        f"AND ({a}.guild_id, {a}.user_id) <= (%(range_upto_g)s, %(range_upto_u)s)"
    )
    return sql, {
        "range_after_g": after[0],
        "range_after_u": after[1],
        "range_upto_g": upto[0],
        "range_upto_u": upto[1],
    }
