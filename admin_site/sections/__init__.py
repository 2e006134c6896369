"""The admin site's sections, one module each, in the order of the site's menu.

A section declares its routes on a `Section` (the blueprint habit) and does nothing else about
access: app.py registers every route behind the one gate, which decides sign-in, guild access
and CSRF before a route runs. A route takes the request and the path's parameters, calls the
domain, and renders or redirects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aws_lambda_powertools.event_handler import Response

from admin_site import web
from pointsbot.platform.amounts import parse_whole_number

RouteFn = Callable[..., Response]


@dataclass(frozen=True)
class Route:
    spec: web.RouteSpec
    fn: RouteFn


@dataclass
class Section:
    """The routes of one section, in the order declared; app.py puts them behind the gate."""

    routes: list[Route] = field(default_factory=list)

    def route(self, method: str, path: str, access: str = "guild") -> Callable[[RouteFn], RouteFn]:
        """Declare a route. access: "public" (anyone), "signed_in" (a session with an identity)
        or "guild" (signed in AND allowed to manage the guild in the path)."""

        def declare(fn: RouteFn) -> RouteFn:
            self.routes.append(Route(web.RouteSpec(method, path, access), fn))
            return fn

        return declare


def int_param(raw: str) -> int:
    """A numeric id from the path, as the site writes it (digits 0-9, no leading zero);
    anything else is a page that does not exist."""
    if not web.canonical_id(raw, digits=18):
        raise web.Refused(404, "There is no such page.")
    return int(raw)


def opt_int(value: str | None, what: str) -> int | None:
    """An optional whole number from a form or query (thousands separators allowed)."""
    text = (value or "").strip()
    return parse_whole_number(text, what) if text else None
