"""Domain errors. Each carries a message fit to show the member or admin who caused it."""

from __future__ import annotations


class DomainError(Exception):
    """A rule said no. `str(error)` is a plain sentence for the person who asked."""

    code = "refused"

    def __init__(self, message: str, /, *, field: str | None = None, **values: object) -> None:
        """`message` is an English sentence, its {placeholders} filled from `values`: the
        sentence as written is the catalog's msgid (dispatch translates it, then fills it in).
        `field` is the form field the refusal is about, when the rule knows it (the admin site
        shows the message next to that field); None: the request as a whole."""
        text = message.format(**values) if values else message
        super().__init__(text)
        self.message = text
        self.template = message
        self.values = values
        self.field = field


class InvalidInput(DomainError):
    code = "invalid_input"


class ReasonRequired(InvalidInput):
    code = "reason_required"


class LimitExceeded(DomainError):
    code = "limit_exceeded"


class DailyCapReached(LimitExceeded):
    code = "daily_cap"


class OutOfRange(LimitExceeded):
    """A balance or amount outside the range balances live in (pointsbot.platform.amounts)."""

    code = "out_of_range"


class InsufficientBalance(DomainError):
    code = "insufficient_balance"


class TransfersDisabled(DomainError):
    code = "transfers_disabled"


class IdempotencyConflict(DomainError):
    """The same idempotency key came back with a different request."""

    code = "idempotency_conflict"


class NotFound(DomainError):
    code = "not_found"


class AlreadyReverted(DomainError):
    code = "already_reverted"
