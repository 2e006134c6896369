"""The SAM tools on template.yaml: validate with lint, cfn-lint, `sam build` without Docker, and
every built handler importable from the build output with only the built layer beside it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pointsbot_local import pg as local_pg

pytestmark = pytest.mark.infra

# What the Lambda Python runtime brings of its own (boto3 and what it needs); everything else a
# handler imports must come from its function folder or the layer.
LAMBDA_RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")


def test_sam_validate_lint_passes(sam_bin: Path, cfn: Any, sam_env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(sam_bin / "sam"), "validate", "--lint", "--template-file", str(cfn.template_path)],
        cwd=cfn.root, env=sam_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_passes(sam_bin: Path, cfn: Any, sam_env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(sam_bin / "cfn-lint"), str(cfn.template_path)],
        cwd=cfn.root, env=sam_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_layer_builds_as_an_importable_pointsbot_package_with_the_migrations(
    sam_build: Path, cfn: Any
) -> None:
    python_dir = sam_build / "PointsbotLayer" / "python"
    # Lambda puts /opt/python on sys.path: the package must sit right under it.
    assert (python_dir / "pointsbot" / "__init__.py").is_file()
    assert (python_dir / "pointsbot" / "platform" / "config.py").is_file()
    # The compiled gettext catalogs travel with the package (pointsbot/platform/i18n.py reads them).
    for mo in (cfn.root / "layers/core/pointsbot/locales").glob("*/LC_MESSAGES/*.mo"):
        built = python_dir / "pointsbot" / mo.relative_to(cfn.root / "layers/core/pointsbot")
        assert built.is_file() and built.read_bytes() == mo.read_bytes(), f"{built} missing from the layer"
    shipped = sorted(p.name for p in (python_dir / "pointsbot_sql").glob("*.sql"))
    assert shipped == sorted(p.name for p in (cfn.root / "sql").glob("*.sql"))
    # Its third-party needs were installed for Linux x86_64, CPython 3.11.
    for package in ("psycopg", "nacl", "aws_lambda_powertools"):
        assert (python_dir / package).is_dir(), f"{package} missing from the built layer"
    binaries = list((python_dir).glob("psycopg_binary/_psycopg*.so"))
    assert binaries and all("cpython-311-x86_64-linux-gnu" in b.name for b in binaries)


def _lambda_runtime_dir(tmp_path: Path) -> Path:
    """A folder standing in for /var/runtime: links to the boto3 family of the test venv."""
    runtime = tmp_path / "var-runtime"
    runtime.mkdir()
    for name in LAMBDA_RUNTIME_PACKAGES:
        module = __import__(name)
        source = Path(module.__file__)
        target = source.parent if source.name == "__init__.py" else source
        (runtime / target.name).symlink_to(target)
    return runtime


def test_every_built_handler_imports_with_only_its_folder_the_layer_and_the_runtime(
    sam_build: Path, tmp_path: Path, cfn: Any
) -> None:
    # Given the build output, and an interpreter that sees nothing of this repository
    runtime = _lambda_runtime_dir(tmp_path)
    layer = sam_build / "PointsbotLayer" / "python"
    built = cfn.functions_of(cfn.load(sam_build / "template.yaml"))
    assert set(built) == set(cfn.functions_of(cfn.load())), "every function of the template was built"
    failures = []
    for name, props in sorted(built.items()):
        module, attribute = props["Handler"].rsplit(".", 1)
        code_dir = sam_build / props["CodeUri"]
        probe = (
            "import importlib, json, sys\n"
            f"sys.path[:0] = {[str(code_dir), str(layer), str(runtime)]!r}\n"
            f"handler = getattr(importlib.import_module({module!r}), {attribute!r})\n"
            "assert callable(handler)\n"
            # boto3 (runtime or layer) must work with the botocore the layer brings
            "import boto3, botocore\n"
            "boto3.client('sqs', region_name='us-east-1')\n"
            "core = sys.modules.get('pointsbot')\n"
            "print(json.dumps(getattr(core, '__file__', None)))\n"
        )
        # When: it imports the handler as Lambda would (-I: no PYTHONPATH, no user site, no cwd;
        # -S: not even the interpreter's site-packages)
        result = subprocess.run(
            [sys.executable, "-I", "-S", "-c", probe],
            cwd=tmp_path,
            env={
                "PATH": "/usr/bin:/bin",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_REGION": "us-east-1",
                "POWERTOOLS_TRACE_DISABLED": "true",
                # A secret reference that cannot be read: importing must not try to.
                "DATABASE_URL_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:none-AbCdEf",
                "DISCORD_BOT_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:none-AbCdEf",
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        # Then: it imports, from the build output
        if result.returncode != 0:
            failures.append(f"{name} ({props['CodeUri']}/{module}.py): {result.stderr.strip()[-1500:]}")
            continue
        core_file = json.loads(result.stdout.strip().splitlines()[-1])
        if core_file is not None:
            assert Path(core_file).is_relative_to(layer), f"{name} took pointsbot from {core_file}"
    assert not failures, "handlers that do not import from the build:\n" + "\n\n".join(failures)


def test_samconfig_parameter_overrides_parse_with_sam_clis_own_reader(sam_bin: Path, cfn: Any) -> None:
    probe = (
        "import json, sys, tomllib\n"
        "from samcli.cli.types import CfnParameterOverridesType\n"
        "config = tomllib.load(open(sys.argv[1], 'rb'))\n"
        "print(json.dumps({env: CfnParameterOverridesType().convert(\n"
        "    config[env]['deploy']['parameters'].get('parameter_overrides', []), None, None)\n"
        "    for env in config if env != 'version'}))\n"
    )
    result = subprocess.run(
        [str(sam_bin / "python"), "-c", probe, str(cfn.root / "samconfig.toml")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    overrides = json.loads(result.stdout)
    assert overrides["default"]["Stage"] == "dev" and overrides["prod"]["Stage"] == "prod"
    parameters = cfn.load()["Parameters"]
    for environment, values in overrides.items():
        assert set(values) <= set(parameters), environment


_RUN_BUILT = """
import json, sys
sys.path[:0] = json.loads(sys.argv[1])
import app

class Context:
    function_name = "built"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:built"
    memory_limit_in_mb = 512
    aws_request_id = "built-1"
    log_group_name = "/aws/lambda/built"
    log_stream_name = "local"
    def get_remaining_time_in_millis(self):
        return 120000

result = app.lambda_handler(json.loads(sys.argv[2]), Context())
print("RESULT " + json.dumps(result))
"""


def _run_built(
    function_dir: Path, layer: Path, runtime: Path, event: dict[str, Any], env: dict[str, str]
) -> Any:
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _RUN_BUILT, json.dumps([str(function_dir), str(layer), str(runtime)]),
         json.dumps(event)],
        env={"PATH": "/usr/bin:/bin", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
             "POWERTOOLS_TRACE_DISABLED": "true", **env},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("RESULT ")]
    return json.loads(line[len("RESULT ") :])


def test_the_built_deploy_hook_migrates_a_real_database_and_the_built_health_check_sees_it(
    sam_build: Path, tmp_path: Path, pg_admin_dsn: str, cfn: Any
) -> None:
    answers: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):  # CloudFormation's presigned URL
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_PUT(self) -> None:
            answers.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    dsn = local_pg.create_database(pg_admin_dsn, "pb_built")
    layer = sam_build / "PointsbotLayer" / "python"
    runtime = _lambda_runtime_dir(tmp_path)
    # The template's values for the two variables this needs
    env = {"DATABASE_URL": dsn, "POINTSBOT_SQL_DIR": str(layer / "pointsbot_sql")}
    try:
        # Given the built deploy hook and layer, and an empty database
        event = {
            "RequestType": "Create", "ResourceType": "Custom::SchemaMigrations",
            "ResponseURL": f"http://127.0.0.1:{server.server_address[1]}/response?X-Amz-Signature=x",
            "StackId": "arn:aws:cloudformation:us-east-1:000000000000:stack/built/1", "RequestId": "r-1",
            "LogicalResourceId": "SchemaMigrations", "ResourceProperties": {"LayerVersion": "1"},
        }  # fmt: skip
        # When CloudFormation creates the schema resource
        _run_built(sam_build / "RegisterCommandsFunction", layer, runtime, event, env)
        # Then every migration shipped in the layer is applied, and CloudFormation hears so
        newest = max(int(p.name[:3]) for p in (cfn.root / "sql").glob("*.sql"))
        (answer,) = answers
        assert answer["Status"] == "SUCCESS", answer["Reason"]
        assert answer["Data"]["SchemaVersion"] == str(newest)
        # And the built health function's deep check reaches the database and sees that version
        health = _run_built(sam_build / "HealthFunction", layer, runtime,
                            {"rawPath": "/health/deep", "requestContext": {"http": {"method": "GET"}}}, env)  # fmt: skip
        assert health["statusCode"] == 200
        assert json.loads(health["body"])["schema_version"] == newest
    finally:
        server.shutdown()
        server.server_close()
        local_pg.drop_database(pg_admin_dsn, dsn)
