"""The API's endpoints as data: each one's parameters, body and answer as JSON Schema. The same
declarations check every request (`check`) and make the OpenAPI document (`openapi_document`),
so the document cannot drift from what the code accepts.

Why not Powertools' `enable_validation=True` with pydantic models: it needs pydantic in the
layer (pydantic-core, about 5 MB), and importing it with Powertools' OpenAPI models added about
0.5 s to this function's init on the bench machine (docs/api.md, "Cold start"); the schemas
here are small and the validator below covers exactly the keywords they use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..platform.errors import InvalidInput

SNOWFLAKE = {"type": "string", "pattern": r"^[1-9][0-9]{0,18}$", "description": "A Discord id, as a string."}
ENTRY_ID = {
    "type": "string",
    "pattern": r"^[1-9][0-9]{0,18}$",
    "description": "A ledger entry id, as a string.",
}
PERIOD = {"type": "string", "enum": ["all", "week", "month", "season"], "default": "all",
          "description": "all-time balance, or the score in this week, this month or the running season."}  # fmt: skip
LIMIT = {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
ENTRY = {
    "type": "object",
    "required": [
        "id",
        "user_id",
        "amount",
        "balance_after",
        "kind",
        "reason",
        "source",
        "actor",
        "created_at",
    ],
    "properties": {
        "id": ENTRY_ID,
        "user_id": SNOWFLAKE,
        "amount": {"type": "integer"},
        "balance_after": {"type": "integer"},
        "kind": {"type": "string"},
        "reason": {"type": "string"},
        "source": {"type": "string"},
        "actor": {"type": "string"},
        "reverts_id": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
ENTRY_PAGE = {
    "type": "object",
    "required": ["entries", "next_cursor"],
    "properties": {
        "entries": {"type": "array", "items": ENTRY},
        "next_cursor": {
            "type": "string",
            "description": "Pass as `after` for the entries that follow (the "
            "same cursor again when there are none yet).",
        },
    },
}
CHANGE = {
    "type": "object",
    "required": ["operation_id", "entries", "balance"],
    "properties": {
        "operation_id": {"type": "string"},
        "entries": {"type": "array", "items": ENTRY},
        "balance": {"type": "integer", "description": "The member's balance after the change."},
    },
}


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # path | query
    schema: dict[str, Any]
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # OpenAPI style: /members/{user_id}
    operation_id: str
    summary: str
    scope: str | None  # read | write | None (public)
    response: dict[str, Any]
    status: int = 200
    params: tuple[Param, ...] = ()
    body: dict[str, Any] | None = None
    description: str = ""
    tags: tuple[str, ...] = field(default=())

    @property
    def route(self) -> str:
        """The path in Powertools' resolver's syntax."""
        return re.sub(r"\{(\w+)\}", r"<\1>", self.path)


# -- the validator: the keywords the schemas above use, nothing more ----------------------------------
def check(value: Any, schema: dict[str, Any], where: str) -> Any:
    """`value` if it fits `schema`; otherwise InvalidInput naming `where` and what is wrong."""
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else (kinds or [])
    if kinds and not any(_is(value, k) for k in kinds):
        raise InvalidInput(f"{where} must be {' or '.join(_NAMES[k] for k in kinds)}.")
    if "enum" in schema and value not in schema["enum"]:
        raise InvalidInput(f"{where} must be one of: {', '.join(map(str, schema['enum']))}.")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            raise InvalidInput(f"{where} must not be empty." if schema["minLength"] == 1
                               else f"{where} is too short (at least {schema['minLength']} characters).")  # fmt: skip
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise InvalidInput(f"{where} is too long (at most {schema['maxLength']} characters).")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise InvalidInput(f"{where} is not valid: {schema.get('description', 'see the API reference')}")
    if isinstance(value, int) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise InvalidInput(f"{where} must be at least {schema['minimum']}.")
        if "maximum" in schema and value > schema["maximum"]:
            raise InvalidInput(f"{where} must be at most {schema['maximum']}.")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                raise InvalidInput(f"{where} needs the field “{name}”.")
        if schema.get("additionalProperties") is False:
            extra = sorted(set(value) - set(props))
            if extra:
                raise InvalidInput(f"{where} has a field this endpoint does not take: “{extra[0]}”.")
        for name, sub in props.items():
            if name in value:
                check(value[name], sub, f"“{name}”")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            check(item, schema["items"], f"{where}[{i}]")
    return value


_NAMES = {"string": "a string", "integer": "a whole number", "boolean": "true or false", "object": "a JSON object",
          "array": "a list", "null": "null"}  # fmt: skip


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(
        value, {"string": str, "boolean": bool, "object": dict, "array": list, "null": type(None)}[kind]
    )


def query_value(raw: str, schema: dict[str, Any], name: str) -> Any:
    """A query parameter's text as its schema's type, checked."""
    if schema.get("type") == "integer":
        if not re.fullmatch(r"-?[0-9]{1,19}", raw):
            raise InvalidInput(f"The parameter “{name}” must be a whole number.")
        return check(int(raw), schema, f"The parameter “{name}”")
    return check(raw, schema, f"The parameter “{name}”")


# -- the OpenAPI document -------------------------------------------------------------------------
def openapi_document(endpoints: tuple[Endpoint, ...], *, version: str, server_url: str = "/api/v1") -> dict:
    paths: dict[str, dict] = {}
    for ep in endpoints:
        op: dict[str, Any] = {
            "operationId": ep.operation_id,
            "summary": ep.summary,
            "responses": {
                str(ep.status): {
                    "description": "OK",
                    "content": {"application/json": {"schema": ep.response}},
                },
                "default": {"description": "An error", "content": {"application/json": {"schema": ERROR}}},
            },
        }
        if ep.description:
            op["description"] = ep.description
        if ep.tags:
            op["tags"] = list(ep.tags)
        params = [
            {"name": p.name, "in": p.where, "required": p.where == "path" or p.required, "schema": p.schema,
             **({"description": p.description} if p.description else {})}
            for p in ep.params
        ]  # fmt: skip
        if ep.scope == "write":
            params.append({"name": "Idempotency-Key", "in": "header", "required": True,
                           "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                           "description": "Any unique string (a UUID): a retry with the same key and body gets the "
                                          "first answer and changes nothing again. Kept 24 hours."})  # fmt: skip
        if params:
            op["parameters"] = params
        if ep.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ep.body}}}
        if ep.scope is not None:
            op["security"] = [{"bearer": []}]
            op["x-scope"] = ep.scope
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pointsbot API",
            "version": version,
            "description": "Read and change a Discord server's points. Keys are made on the admin site "
            "(API section), per server, with the scopes read and/or write.",
        },
        "servers": [{"url": server_url}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR, "Entry": ENTRY},
        },
        "paths": paths,
    }
