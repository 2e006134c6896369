"""The SAM tools on template.yaml: validate with lint, cfn-lint, `sam build` without Docker, and
every built handler importable from the build output with only the built layer beside it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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
    assert (python_dir / "pointsbot" / "config.py").is_file()
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
