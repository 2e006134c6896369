"""A function's environment as deployed: what template.yaml gives it (Globals and its own
Environment, parameters and resources filled in) and what Lambda itself adds (the function's
name, region, credentials and, with `Tracing: Active`, the X-Ray daemon and trace header).

The cold-start bench and the tests that hold the interactions function to "no X-Ray SDK on
the way to an answer" run the handler in this environment rather than in a hand-written one,
so a setting added to the template (a Powertools variable, tracing) is measured as it ships.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

# The X-Ray daemon address Lambda gives a function with active tracing.
XRAY_DAEMON = "169.254.79.129:2000"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, ...) read as their long forms."""


def _tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref": value} if suffix == "Ref" else {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def function_environment(
    function: str,
    parameters: dict[str, str],
    resources: dict[str, str],
    template: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The variables template.yaml sets for `function` (a logical id, e.g. InteractionsFunction).

    `parameters` overrides the template's parameter defaults (those without a default must be
    given); `resources` gives what a !Ref to a resource resolves to (TaskQueue -> a queue URL).
    """
    template = template or load_template()
    values = {name: str(p["Default"]) for name, p in template["Parameters"].items() if "Default" in p}
    values.update(parameters)
    values.update(resources)
    values.setdefault("AWS::Region", "us-east-1")

    def resolve(item: Any) -> str:
        if isinstance(item, str | int | float | bool):
            return str(item).lower() if isinstance(item, bool) else str(item)
        if isinstance(item, dict) and "Ref" in item:
            if item["Ref"] not in values:
                raise KeyError(
                    f"give a value for {item['Ref']} (a parameter or resource the template refers to)"
                )
            return values[item["Ref"]]
        if isinstance(item, dict) and "Fn::Sub" in item and isinstance(item["Fn::Sub"], str):
            return re.sub(r"\$\{([^}!]+)\}", lambda m: values[m[1]], item["Fn::Sub"])
        raise ValueError(f"cannot resolve {item!r}")

    shared = template["Globals"]["Function"].get("Environment", {}).get("Variables", {})
    own = template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {})
    return {name: resolve(value) for name, value in {**shared, **own}.items()}


def lambda_environment(function: str, template: dict[str, Any] | None = None) -> dict[str, str]:
    """What the Lambda service adds to a function's environment, from the template's settings
    (name, memory, runtime, tracing). Credentials are dummies: nothing here reaches AWS."""
    template = template or load_template()
    shared = template["Globals"]["Function"]
    props = {**shared, **template["Resources"][function]["Properties"]}
    name = f"pointsbot-dev-{function}"
    env = {
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(props.get("MemorySize", 128)),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{props['Runtime']}",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "ASIAXXXXXXXXXXXXXXXX",
        "AWS_SECRET_ACCESS_KEY": "bench-secret-access-key",
        "AWS_SESSION_TOKEN": "bench-session-token",
        "_HANDLER": props["Handler"],
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
    }
    if props.get("Tracing") == "Active":
        host, port = XRAY_DAEMON.split(":")
        env.update(AWS_XRAY_DAEMON_ADDRESS=XRAY_DAEMON, _AWS_XRAY_DAEMON_ADDRESS=host,
                   _AWS_XRAY_DAEMON_PORT=port, AWS_XRAY_CONTEXT_MISSING="LOG_ERROR")  # fmt: skip
    return env


def trace_header(sampled: bool = True) -> str:
    """A fresh `_X_AMZN_TRACE_ID`, as Lambda sets it for each invocation under active tracing."""
    import os
    import time

    root = f"1-{int(time.time()):08x}-{os.urandom(12).hex()}"
    return f"Root={root};Parent={os.urandom(8).hex()};Sampled={int(sampled)}"
