"""template.yaml held against the code: settings, secrets, the queue, handlers, routes, alarms.

These read the template and the code only (no AWS, no SAM CLI), so they run in a second.
"""

from __future__ import annotations

import ast
import os
import re
import tomllib
from typing import Any

import pytest

from pointsbot.platform import secrets
from pointsbot.platform.config import SETTINGS_TABLE, load_settings
from pointsbot_local import handlers as local_handlers
from pointsbot_local import server as local_server

pytestmark = pytest.mark.infra

# Variables the template may set that are not config settings, and who reads them.
OTHER_VARIABLES = {
    "POINTSBOT_SQL_DIR": "pointsbot.platform.migrate",
    "COMMANDS_HASH_PARAMETER": "pointsbot.ops.deploy_hooks",
    "POWERTOOLS_SERVICE_NAME": "Powertools / pointsbot.platform.observability",
    "POWERTOOLS_METRICS_NAMESPACE": "Powertools / pointsbot.platform.observability",
    "POWERTOOLS_LOG_LEVEL": "Powertools",
    "POWERTOOLS_LOGGER_LOG_EVENT": "Powertools",
    "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "Powertools",
}


def _environment(template: dict[str, Any], function: dict[str, Any]) -> dict[str, Any]:
    shared = template["Globals"]["Function"]["Environment"]["Variables"]
    own = function.get("Environment", {}).get("Variables", {})
    return {**shared, **own}


def _policies(function: dict[str, Any]) -> list[Any]:
    """The function's policies, with both branches of an Fn::If (a conditional grant still counts)."""
    found: list[Any] = []
    for policy in function.get("Policies", []):
        if isinstance(policy, dict) and "Fn::If" in policy:
            found.extend(p for p in policy["Fn::If"][1:] if p != {"Ref": "AWS::NoValue"})
        else:
            found.append(policy)
    return found


def _granted_secrets(function: dict[str, Any]) -> list[Any]:
    return [
        policy["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"]
        for policy in _policies(function)
        if isinstance(policy, dict) and "AWSSecretsManagerGetSecretValuePolicy" in policy
    ]


def test_every_setting_of_the_config_module_is_set_in_the_template(template, functions) -> None:
    environments = [_environment(template, f) for f in functions.values()]
    missing = []
    for setting in SETTINGS_TABLE:
        name = secrets.reference_variable(setting.env) if setting.secret else setting.env
        if not any(name in env for env in environments):
            missing.append(name)
    assert not missing, f"set these in template.yaml (Globals or a function's Environment): {missing}"


def test_secret_settings_come_by_reference_never_as_plain_values(template, functions) -> None:
    for name, function in functions.items():
        env = _environment(template, function)
        for setting in (s for s in SETTINGS_TABLE if s.secret):
            assert setting.env not in env, f"{name}: {setting.env} must come from a secret, not the template"


def test_each_secret_reference_is_readable_by_the_function_that_has_it(template, functions) -> None:
    for name, function in functions.items():
        granted = _granted_secrets(function)
        for variable, value in _environment(template, function).items():
            if variable.endswith(secrets.SUFFIX):
                assert value in granted, f"{name} has {variable} but no GetSecretValue grant on {value}"


def test_no_variable_in_the_template_is_read_by_nobody(template, functions) -> None:
    known = {s.env for s in SETTINGS_TABLE} | set(OTHER_VARIABLES)
    known |= {secrets.reference_variable(s.env) for s in SETTINGS_TABLE if s.secret}
    for name, function in functions.items():
        stray = set(_environment(template, function)) - known
        assert not stray, (
            f"{name} sets variables nothing reads (typo, or a setting not in config.py): {stray}"
        )


def test_literal_values_in_the_template_are_the_config_defaults(template) -> None:
    # A default changed in config.py and not here would silently not apply in AWS.
    shared = template["Globals"]["Function"]["Environment"]["Variables"]
    literals = {}
    for function in template["Resources"].values():
        literals.update(function.get("Properties", {}).get("Environment", {}).get("Variables", {}))
    literals.update(shared)
    by_env = {s.env: s for s in SETTINGS_TABLE}
    for env, value in literals.items():
        if env in by_env and isinstance(value, str):
            setting = by_env[env]
            parsed = getattr(load_settings({env: value}), setting.field)
            assert parsed == setting.default, (
                f"{env}: template says {value!r}, config.py's default is {setting.default!r}"
            )


def test_every_handler_the_template_names_exists_and_defines_it(cfn, functions) -> None:
    for name, function in functions.items():
        module, attribute = function["Handler"].rsplit(".", 1)
        path = cfn.root / function["CodeUri"] / (module.replace(".", "/") + ".py")
        assert path.is_file(), f"{name}: {path.relative_to(cfn.root)} does not exist"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        # A handler may also be assigned, e.g. a function wrapped by Powertools' decorators.
        defined |= {
            t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
        }
        assert attribute in defined, f"{name}: {path.relative_to(cfn.root)} defines no {attribute}()"


def test_functions_use_python_311_on_x86_64_with_the_pointsbot_layer(template, functions) -> None:
    shared = template["Globals"]["Function"]
    assert shared["Runtime"] == "python3.11"
    assert shared["Architectures"] == ["x86_64"]
    assert shared["Layers"] == [{"Ref": "PointsbotLayer"}]
    assert shared["Tracing"] == "Active"
    for function in functions.values():
        assert "Runtime" not in function and "Layers" not in function and "Architectures" not in function
    layer = template["Resources"]["PointsbotLayer"]
    assert layer["Properties"]["ContentUri"].rstrip("/") == "layers/core"
    assert layer["Metadata"]["BuildMethod"] == "python3.11"


def test_the_migrations_travel_in_the_layer_where_migrate_looks(cfn, template) -> None:
    link = cfn.root / "layers" / "core" / "pointsbot_sql"
    assert link.resolve() == (cfn.root / "sql").resolve()
    sql_dir = template["Globals"]["Function"]["Environment"]["Variables"]["POINTSBOT_SQL_DIR"]
    # The layer's content lands in /opt/python; pointsbot_sql is a folder of that content.
    assert sql_dir == "/opt/python/pointsbot_sql"
    from pointsbot.platform import migrate

    os.environ["POINTSBOT_SQL_DIR"] = str(link)
    try:
        assert [m.path.name for m in migrate.discover(migrate.default_migrations_dir())] == sorted(
            p.name for p in (cfn.root / "sql").glob("*.sql")
        )
    finally:
        del os.environ["POINTSBOT_SQL_DIR"]


def _routes(functions: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = []
    for name, function in functions.items():
        for event in function.get("Events", {}).values():
            if event["Type"] == "HttpApi":
                found.append((event["Properties"]["Method"], event["Properties"]["Path"], name))
    return found


def _local_name(cfn, function: dict[str, Any]) -> str:
    module = function["Handler"].rsplit(".", 1)[0]
    path = (cfn.root / function["CodeUri"] / f"{module}.py").resolve()
    names = [n for n, p in local_handlers.FUNCTIONS.items() if p.resolve() == path]
    assert names, f"{path} is not a function the local runtime knows (pointsbot_local.handlers.FUNCTIONS)"
    return names[0]


def test_http_routes_are_the_ones_the_local_runtime_serves(cfn, functions) -> None:
    routes = _routes(functions)
    assert {(m, p) for m, p, _ in routes} >= {
        ("POST", "/interactions"),
        ("GET", "/health"),
        ("GET", "/health/deep"),
        ("ANY", "/admin"),
        ("ANY", "/admin/{proxy+}"),
    }
    for method, path, name in routes:
        concrete = path.replace("{proxy+}", "members/1")
        for probe in ("GET", "POST") if method == "ANY" else (method,):
            assert local_server._route(probe, concrete) == _local_name(cfn, functions[name]), (method, path)


def test_every_function_of_the_local_runtime_is_deployed(cfn, functions) -> None:
    deployed = {_local_name(cfn, f) for f in functions.values()}
    assert deployed == set(local_handlers.FUNCTIONS)


def test_the_task_queue_feeds_the_worker_with_partial_batch_failures_and_a_dead_letter_queue(
    template, functions
) -> None:
    resources = template["Resources"]
    assert template["Globals"]["Function"]["Environment"]["Variables"]["TASK_QUEUE_URL"] == {
        "Ref": "TaskQueue"
    }
    queue = resources["TaskQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["TaskDeadLetterQueue", "Arn"]}
    worker = functions["WorkerFunction"]
    (event,) = [e for e in worker["Events"].values() if e["Type"] == "SQS"]
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["TaskQueue", "Arn"]}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # AWS's advice: visibility at least six times the function's timeout, or work is done twice.
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"]
    # The worker logs and counts a task's last try by this number; the local queue uses it too.
    from pointsbot.ops.worker import MAX_RECEIVES

    assert queue["RedrivePolicy"]["maxReceiveCount"] == MAX_RECEIVES
    # Tasks that gave up are alarmed: the dead-letter queue's depth.
    alarmed = {
        a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in resources.values()
        if a["Type"] == "AWS::CloudWatch::Alarm"
        and a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    }
    assert "TaskDeadLetterQueue" in alarmed
    for name in ("InteractionsFunction", "WorkerFunction", "AdminSiteFunction"):
        sends = [p for p in _policies(functions[name]) if isinstance(p, dict) and "SQSSendMessagePolicy" in p]
        assert sends == [
            {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["TaskQueue", "QueueName"]}}}
        ], name


# AWS services the code calls, and the template policy that grants each.
SERVICE_GRANTS = {
    "sqs": "SQSSendMessagePolicy",
    "lambda": "LambdaInvokePolicy",
    "ssm": "ssm:PutParameter",
    "secretsmanager": "AWSSecretsManagerGetSecretValuePolicy",
}


def test_every_aws_service_the_code_calls_is_granted_somewhere(cfn, functions) -> None:
    code = "\n".join(p.read_text(encoding="utf-8") for d in ("layers/core/pointsbot", "functions", "admin_site")
                     for p in (cfn.root / d).rglob("*.py"))  # fmt: skip
    called = set(re.findall(r"boto3\.client\(\s*\"([a-z0-9-]+)\"", code))
    # secrets.py picks its service from the ARN: Secrets Manager in the template
    called.add("secretsmanager")
    assert called <= set(SERVICE_GRANTS), (
        f"no grant known for {called - set(SERVICE_GRANTS)}: add it to the template"
    )
    policies = repr([_policies(f) for f in functions.values()])
    for service in called:
        assert SERVICE_GRANTS[service] in policies, f"the code calls {service} but no function may"


def test_schedules(functions) -> None:
    (sweep,) = functions["AchievementsFunction"]["Events"].values()
    assert sweep["Type"] == "Schedule" and sweep["Properties"]["Schedule"] == {
        "Ref": "AchievementsScheduleRate"
    }
    (tick,) = functions["KeepaliveFunction"]["Events"].values()
    assert tick["Type"] == "Schedule" and tick["Properties"]["Schedule"] == "rate(5 minutes)"


def test_the_deploy_hooks_are_wired_to_the_register_commands_function(template) -> None:
    from pointsbot.ops import deploy_hooks

    resources = template["Resources"]
    for resource_type in deploy_hooks.HOOKS:
        users = [r for r in resources.values() if r["Type"] == resource_type]
        assert len(users) == 1, resource_type
        props = users[0]["Properties"]
        assert props["ServiceToken"] == {"Fn::GetAtt": ["RegisterCommandsFunction", "Arn"]}
        # A new layer version must make CloudFormation call the hook on every code change.
        assert props["LayerVersion"] == {"Ref": "PointsbotLayer"}
    hash_parameter = resources["RegisterCommandsFunction"]["Properties"]["Environment"]["Variables"]
    assert hash_parameter["COMMANDS_HASH_PARAMETER"] == {"Ref": "CommandsHashParameter"}


def test_functions_that_serve_are_updated_only_after_the_migrations(template) -> None:
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function" and name != "RegisterCommandsFunction":
            assert resource.get("DependsOn") == "SchemaMigrations", name


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        n: r["Properties"] for n, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"
    }


def _metric_stats(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    if "MetricName" in alarm:
        return [{"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"],
                 "Dimensions": alarm.get("Dimensions", [])}]  # fmt: skip
    return [m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m]


def test_the_alarms_the_issue_asks_for_exist_and_notify_the_topic(template) -> None:
    alarms = _alarms(template)
    watched = {(m["Namespace"] if isinstance(m["Namespace"], str) else "custom", m["MetricName"])
               for a in alarms.values() for m in _metric_stats(a)}  # fmt: skip
    assert {
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Duration"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/ApiGateway", "5xx"),
        ("custom", "HealthCheck"),
        ("custom", "DmsFailed"),
        ("custom", "CommandSyncFailed"),
    } <= watched
    duration = alarms["InteractionsDurationAlarm"]
    assert duration["ExtendedStatistic"] == "p99" and duration["Threshold"] == 2000
    for name, alarm in alarms.items():
        assert {"Ref": "AlarmTopic"} in alarm["AlarmActions"], name
        assert "docs/deploy.md" in alarm["AlarmDescription"], f"{name}: point the reader at the runbook"


def test_custom_metric_alarms_watch_metrics_the_code_emits(cfn, template) -> None:
    shared = template["Globals"]["Function"]["Environment"]["Variables"]
    code = "\n".join(p.read_text(encoding="utf-8") for d in ("layers/core/pointsbot", "functions")
                     for p in (cfn.root / d).rglob("*.py"))  # fmt: skip
    emitted = set(re.findall(r"add_metric\(\s*name=\"(\w+)\"", code))
    emitted |= set(re.findall(r"^\w*METRIC\w* = \"(\w+)\"", code, re.MULTILINE))
    # Metrics that a metric filter of the template makes from the logs count as emitted.
    emitted |= {
        t["MetricName"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Logs::MetricFilter"
        for t in r["Properties"]["MetricTransformations"]
    }
    for name, alarm in _alarms(template).items():
        for metric in _metric_stats(alarm):
            if metric["Namespace"] == shared["POWERTOOLS_METRICS_NAMESPACE"]:
                assert metric["MetricName"] in emitted, f"{name}: no code emits {metric['MetricName']}"
                # Powertools adds the service dimension to every metric it emits.
                assert metric["Dimensions"] == [
                    {"Name": "service", "Value": shared["POWERTOOLS_SERVICE_NAME"]}
                ]
            else:
                assert str(metric["Namespace"]).startswith("AWS/"), name


def test_outputs_give_the_urls_an_operator_pastes(template) -> None:
    outputs = template["Outputs"]
    assert outputs["InteractionsEndpointUrl"]["Value"]["Fn::Sub"].endswith("/interactions")
    assert outputs["AdminSiteUrl"]["Value"]["Fn::Sub"].endswith("/admin")
    assert outputs["HealthUrl"]["Value"]["Fn::Sub"].endswith("/health/deep")


def _references(node: Any) -> set[str]:
    """Logical ids a piece of the template refers to (Ref, GetAtt, ${X} in Sub)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([\w.:]+)\}", text)}
            found |= _references(value)
    elif isinstance(node, list):
        for item in node:
            found |= _references(item)
    return found


def test_every_function_logs_to_its_own_group_made_before_it_with_the_retention(template, functions) -> None:
    resources = template["Resources"]
    used: set[str] = set()
    for name, function in functions.items():
        # The function names its group (LoggingConfig), so CloudFormation creates the group
        # first: Lambda never makes one of its own, without retention, that the stack's
        # resource would then collide with.
        group_ref = function.get("LoggingConfig", {}).get("LogGroup")
        assert isinstance(group_ref, dict) and "Ref" in group_ref, (
            f"{name}: LoggingConfig.LogGroup: !Ref <its group>"
        )
        group = resources[group_ref["Ref"]]
        assert group["Type"] == "AWS::Logs::LogGroup", name
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        assert not _references(group) & set(functions), f"{group_ref['Ref']} must not wait for a function"
        assert group_ref["Ref"] not in used, f"{name} shares a log group"
        used.add(group_ref["Ref"])
        assert group["Properties"]["LogGroupName"]["Fn::Sub"].startswith("/aws/lambda/pointsbot-${Stage}-"), (
            name
        )


def test_the_sweep_and_the_admin_site_alarm_on_any_error_without_a_volume_floor(template) -> None:
    alarms = _alarms(template)
    resources = template["Resources"]

    def watching(function: str) -> list[dict[str, Any]]:
        return [
            a for a in alarms.values()
            if any(m["MetricName"] == "Errors" and m["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
                   for m in _metric_stats(a))
        ]  # fmt: skip

    for function in ("AchievementsFunction", "AdminSiteFunction"):
        (alarm,) = watching(function)
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and alarm["Threshold"] <= 1, (
            function
        )
        assert alarm["EvaluationPeriods"] == 1 and alarm["TreatMissingData"] == "notBreaching", function
        for expression in (m["Expression"] for m in alarm.get("Metrics", []) if "Expression" in m):
            assert "IF(" not in expression.upper(), f"{function}: no minimum number of requests"
    # The admin site's error pages (it catches its exceptions) count too: a filter on its log
    # group turns each ERROR line into the metric the admin alarm adds.
    (admin,) = watching("AdminSiteFunction")
    logged = [m for m in _metric_stats(admin) if m["MetricName"] != "Errors"]
    (metric,) = logged
    filters = [
        r["Properties"] for r in resources.values()
        if r["Type"] == "AWS::Logs::MetricFilter" and r["Properties"]["LogGroupName"] == resources["AdminSiteFunction"]["Properties"]["LoggingConfig"]["LogGroup"]
    ]  # fmt: skip
    (admin_filter,) = filters
    (transformation,) = admin_filter["MetricTransformations"]
    assert transformation["MetricName"] == metric["MetricName"]
    assert transformation["MetricNamespace"] == metric["Namespace"]
    assert admin_filter["FilterPattern"] == '{ $.level = "ERROR" }'


def test_the_admin_error_filter_matches_what_the_admin_site_logs(caplog) -> None:
    # What the filter and its dimension read: Powertools' JSON "level" and "service", as the
    # shared logger formats an error line.
    import json

    from pointsbot.platform.observability import logger

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("admin site error")
    (record,) = [r for r in caplog.records if r.getMessage() == "admin site error"]
    line = json.loads(logger.registered_formatter.format(record))
    assert (line["level"], line["service"]) == ("ERROR", "pointsbot")


def test_samconfig_has_default_and_prod_and_no_secret(cfn, template) -> None:
    text = (cfn.root / "samconfig.toml").read_text(encoding="utf-8")
    config = tomllib.loads(text)
    assert {"default", "prod"} <= set(config)
    parameters = template["Parameters"]
    for environment, commands in config.items():
        if environment == "version":
            continue
        deploy = commands["deploy"]["parameters"]
        assert deploy["capabilities"] == "CAPABILITY_IAM", environment
        assert deploy.get("confirm_changeset") is not None, environment
        overrides = deploy.get("parameter_overrides", [])
        for override in overrides if isinstance(overrides, list) else overrides.split():
            key = override.split("=", 1)[0]
            assert key in parameters, f"{environment}: {key} is not a template parameter"
    # Tokens, passwords and URLs with credentials never go in a file that is committed.
    assert not re.search(r"postgres(ql)?://[^\s\"']*:[^\s\"']*@", text)
    assert not re.search(r"[MN][A-Za-z\d_-]{23,}\.[\w-]{6}\.[\w-]{27,}", text), (
        "looks like a Discord bot token"
    )
    assert "DatabaseUrl=" not in text.replace("DatabaseUrlSecretArn=", "")


def test_the_runbook_covers_every_alarm(cfn) -> None:
    doc = (cfn.root / "docs" / "deploy.md").read_text(encoding="utf-8")
    for alarm in _alarms_names(cfn):
        assert alarm in doc, f"the runbook in docs/deploy.md has no entry for {alarm}"


def _alarms_names(cfn) -> list[str]:
    template = cfn.load()
    return [a["AlarmName"]["Fn::Sub"].replace("pointsbot-${Stage}-", "") for a in _alarms(template).values()]


def test_secret_parameters_have_no_default(template) -> None:
    # A default would end up deployed by accident; sam deploy --guided asks for each.
    for name in (
        "DiscordBotTokenSecretArn",
        "DatabaseUrlSecretArn",
        "DiscordPublicKey",
        "DiscordApplicationId",
    ):
        assert "Default" not in template["Parameters"][name], name


# Functions that run once per deploy hold no connection worth capping.
UNCAPPED = {"RegisterCommandsFunction"}


def test_every_function_that_connects_has_its_reserved_concurrency_as_a_parameter(
    cfn, template, functions
) -> None:
    # Each warm container holds one database connection: a function's concurrency is its share
    # of the database's connections, and an operator caps it with a parameter (default: none).
    doc = (cfn.root / "docs" / "deploy.md").read_text(encoding="utf-8")
    for name, function in functions.items():
        if name in UNCAPPED:
            continue
        reserved = function.get("ReservedConcurrentExecutions")
        assert reserved is not None, f"{name}: no ReservedConcurrentExecutions"
        condition, value, otherwise = reserved["Fn::If"]
        parameter = value["Ref"]
        assert otherwise == {"Ref": "AWS::NoValue"}, name
        assert template["Parameters"][parameter]["Default"] == -1, f"{parameter}: none reserved unless asked"
        assert template["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, -1]}]}
        assert f"`{parameter}`" in doc, f"docs/deploy.md does not say how to set {parameter}"


def test_the_worker_takes_tasks_at_most_as_many_at_once_as_its_parameter_says(template, functions) -> None:
    queue = functions["WorkerFunction"]["Events"]["Tasks"]["Properties"]
    assert queue["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "WorkerMaximumConcurrency"}}
    parameter = template["Parameters"]["WorkerMaximumConcurrency"]
    assert (parameter["MinValue"], parameter["MaxValue"]) == (2, 1000)  # what SQS accepts


def test_rds_proxy_is_optional_for_a_database_in_the_vpc_and_complete(cfn, template) -> None:
    resources = template["Resources"]
    proxy_parts = {
        name: r
        for name, r in resources.items()
        if r["Type"].startswith("AWS::RDS::DBProxy") or name == "RdsProxyRole"
    }
    assert set(proxy_parts) == {"RdsProxy", "RdsProxyTargetGroup", "RdsProxyRole"}
    assert all(r.get("Condition") == "UseRdsProxy" for r in proxy_parts.values())
    # Only with subnets (a proxy lives in the VPC), credentials and a target.
    use = template["Conditions"]["UseRdsProxy"]["Fn::And"]
    assert {"Fn::Condition": "UseVpc"} in use  # !Condition, as the loader reads it
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "RdsProxySecretArn"}, ""]}]} in use
    for name in ("RdsProxySecretArn", "RdsProxyDbInstanceId", "RdsProxyDbClusterId"):
        assert template["Parameters"][name]["Default"] == "", f"{name}: no proxy unless asked"
    proxy = resources["RdsProxy"]["Properties"]
    assert proxy["EngineFamily"] == "POSTGRESQL" and proxy["RequireTLS"] is True
    assert proxy["Auth"][0]["SecretArn"] == {"Ref": "RdsProxySecretArn"}
    assert proxy["VpcSubnetIds"] == {"Ref": "VpcSubnetIds"}
    targets = resources["RdsProxyTargetGroup"]["Properties"]
    assert targets["DBProxyName"] == {"Ref": "RdsProxy"}
    assert targets["ConnectionPoolConfigurationInfo"]["MaxConnectionsPercent"] == {
        "Ref": "RdsProxyMaxConnectionsPercent"
    }
    # The proxy's role reads the one secret it logs in with, nothing else.
    statements = [
        st
        for policy in resources["RdsProxyRole"]["Properties"]["Policies"]
        for st in policy["PolicyDocument"]["Statement"]
    ]
    assert statements == [
        {
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": {"Ref": "RdsProxySecretArn"},
        }
    ]
    assert template["Outputs"]["RdsProxyEndpoint"]["Condition"] == "UseRdsProxy"
