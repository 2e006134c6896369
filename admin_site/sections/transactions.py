"""3. Transactions monitor: filtered pages of the ledger, and their CSV."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from admin_site import web
from admin_site.sections import Section, int_param
from pointsbot import ledger
from pointsbot.admin import bulk, monitor
from pointsbot.platform.errors import DomainError

routes = Section()


@routes.route("GET", "/g/<guild_id>/transactions")
def transactions(req: web.AdminRequest, guild_id: int) -> Response:
    error = None
    try:
        flt = monitor.TransactionFilter.from_form(req.query_dict)
    except DomainError as exc:  # a bad value, or a number out of any range: shown above the list
        flt, error = monitor.TransactionFilter(), exc.message
    before = req.query("before")
    result = req.db.run(monitor.transactions_page, guild_id, flt, int_param(before) if before else None)
    return web.page(req, "transactions.html", flt=flt, query=flt.as_query(), result=result, error=error,
                    kinds=ledger.KINDS, sources=ledger.SOURCES, form_token=bulk.new_form_token())  # fmt: skip


@routes.route("GET", "/g/<guild_id>/transactions.csv")
def transactions_csv(req: web.AdminRequest, guild_id: int) -> Response:
    flt = monitor.TransactionFilter.from_form(req.query_dict)
    with req.db.connection() as conn:
        body = "".join(monitor.export_csv(conn, guild_id, flt))
    return web.respond(req, 200, body, "text/csv; charset=utf-8",
                       headers={"Content-Disposition": f'attachment; filename="transactions-{guild_id}.csv"'})  # fmt: skip
