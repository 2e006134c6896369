"""Fixtures for checking the bot's Discord traffic against Discord's own OpenAPI description.

The spec lives beside the repository (../shared/discord/openapi.json). Under CI a missing
spec is a failure: the checks must run there.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pointsbot.discord.rest import DiscordClient
from pointsbot_local import discord_standin_rest

ROOT = Path(__file__).resolve().parents[2]
# DISCORD_OPENAPI_SPEC names it where shared/ is not beside the checkout (a git worktree elsewhere)
SPEC_PATH = Path(
    os.environ.get("DISCORD_OPENAPI_SPEC") or ROOT.parent / "shared" / "discord" / "openapi.json"
)


@lru_cache(maxsize=1)
def _load_spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


@pytest.fixture(scope="session")
def spec() -> dict[str, Any]:
    if not SPEC_PATH.exists():
        message = f"Discord's OpenAPI spec is missing at {SPEC_PATH}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message + " (clone the repository with shared/ beside it)")
    return _load_spec()


class Contract:
    """Looks up operations in the spec and validates bodies against their schemas."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self._validators: dict[str, Draft202012Validator] = {}
        self._paths = [
            (re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", path) + "$"), path) for path in spec["paths"]
        ]

    def template_of(self, path: str) -> str:
        """The spec's path template for a concrete path (fixed segments like @original win)."""
        matches = [template for regex, template in self._paths if regex.match(path)]
        assert matches, f"{path} is not a path of Discord's API"
        return min(matches, key=lambda t: t.count("{"))

    def operation(self, method: str, path: str) -> dict[str, Any]:
        item = self.spec["paths"][self.template_of(path)]
        assert method.lower() in item, f"{method} {path}: Discord has no such operation"
        return item[method.lower()]

    def schema(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node and len(node) == 1:
            name = node["$ref"].split("/")[-1]
            kind = node["$ref"].split("/")[-2]
            node = self.spec["components"][kind][name]
        return node

    def validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            # The fragment becomes a root document that carries the spec's components, so its
            # "#/components/schemas/..." references resolve.
            self._validators[key] = Draft202012Validator({**schema, "components": self.spec["components"]})
        return self._validators[key]

    def errors(self, schema: dict[str, Any], instance: Any) -> list[str]:
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in
                self.validator(schema).iter_errors(instance)]  # fmt: skip

    def request_schema(self, method: str, path: str) -> dict[str, Any]:
        body = self.schema(self.operation(method, path)["requestBody"])
        return body["content"]["application/json"]["schema"]

    def response(self, method: str, path: str, status: int) -> dict[str, Any]:
        responses = self.operation(method, path)["responses"]
        found = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
        assert found is not None, f"{method} {path}: Discord documents no {status} answer"
        return self.schema(found)

    def response_schema(self, method: str, path: str, status: int) -> dict[str, Any] | None:
        content = self.response(method, path, status).get("content")
        return None if content is None else content["application/json"]["schema"]

    def check_exchange(self, exchange: Any) -> list[str]:
        """Everything wrong with one recorded request and its answer, by the spec."""
        problems: list[str] = []
        path = exchange.path.split("?", 1)[0]
        if exchange.body is not None:
            problems += [
                f"request {e}" for e in self.errors(self.request_schema(exchange.method, path), exchange.body)
            ]
        schema = self.response_schema(exchange.method, path, exchange.status)
        if schema is not None and exchange.status != 204:
            problems += [f"response {e}" for e in self.errors(schema, exchange.response)]
        return problems


@pytest.fixture(scope="session")
def contract(spec) -> Contract:
    return Contract(spec)


@pytest.fixture
def fresh_standin(standin_url) -> Iterator[str]:
    discord_standin_rest.reset()
    yield standin_url
    discord_standin_rest.reset()


@pytest.fixture
def client(fresh_standin) -> DiscordClient:
    return DiscordClient(fresh_standin, "test-bot-token", max_retry_wait=5.0)
