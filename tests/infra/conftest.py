"""Fixtures for the template checks: template.yaml parsed, the SAM tools, one `sam build` per session."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# One reader of template.yaml's CloudFormation tags, shared with the cold-start harness.
from pointsbot_local.lambda_env import ROOT, TEMPLATE, load_template

SAM_VENV = ROOT / ".venv-sam"
SAM_SETUP = ROOT / "scripts" / "setup.d" / "10-sam-venv"


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


def functions_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


@pytest.fixture(scope="session")
def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return functions_of(template)


class TemplateTools:
    """The helpers above, handed to test modules as a fixture (tests/infra is not a package)."""

    root = ROOT
    template_path = TEMPLATE
    load = staticmethod(load_template)
    functions_of = staticmethod(functions_of)


@pytest.fixture(scope="session")
def cfn() -> type[TemplateTools]:
    return TemplateTools


@pytest.fixture(scope="session")
def sam_env() -> dict[str, str]:
    return tool_env()


def tool_env() -> dict[str, str]:
    """Environment for the SAM tools: no telemetry, a region, no credentials needed."""
    env = dict(os.environ)
    env.update(
        SAM_CLI_TELEMETRY="0",
        AWS_DEFAULT_REGION=env.get("AWS_DEFAULT_REGION", "us-east-1"),
        AWS_REGION=env.get("AWS_REGION", env.get("AWS_DEFAULT_REGION", "us-east-1")),
        # sam build resolves wheels with the pip of the python3.11 on PATH; keep its output short
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return env


@pytest.fixture(scope="session")
def sam_bin() -> Path:
    """The tool virtualenv's bin folder, installed by the project's own setup script if missing."""
    subprocess.run([str(SAM_SETUP)], check=True, cwd=ROOT, timeout=900)
    bin_dir = SAM_VENV / "bin"
    assert (bin_dir / "sam").exists() and (bin_dir / "cfn-lint").exists()
    return bin_dir


@pytest.fixture(scope="session")
def sam_build(sam_bin: Path) -> Iterator[Path]:
    """`sam build` of template.yaml into a temporary folder, once per session, no cache, no Docker."""
    with tempfile.TemporaryDirectory(prefix="pointsbot-sam-build-") as tmp:
        build_dir = Path(tmp) / "build"
        result = subprocess.run(
            [str(sam_bin / "sam"), "build", "--template-file", str(TEMPLATE), "--build-dir", str(build_dir),
             "--no-cached", "--base-dir", str(ROOT)],
            cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert result.returncode == 0, f"sam build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        yield build_dir
