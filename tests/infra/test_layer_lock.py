"""The layer is built from a lock file with hashes (layers/core/requirements.txt, made from the
human list requirements.in by scripts/lock-layer) that pins its whole closure: nothing in the
built layer comes from a range a later release can move, and boto3, botocore and s3transfer
are a matching set."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.infra

LAYER = Path(__file__).resolve().parents[2] / "layers" / "core"


def _lock() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of every requirement in the lock."""
    text = (LAYER / "requirements.txt").read_text(encoding="utf-8").replace("\\\n", " ")
    pins: dict[str, tuple[str, list[str]]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        found = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})+)", line)
        assert found, f"layers/core/requirements.txt: not an exact pin with hashes: {line[:80]}"
        pins[canonicalize_name(found[1])] = (found[2], re.findall(r"sha256:([0-9a-f]{64})", found[3]))
    return pins


def test_every_requirement_of_the_human_list_is_locked_at_its_version() -> None:
    lock = _lock()
    wanted = [
        Requirement(line.split("#", 1)[0].strip())
        for line in (LAYER / "requirements.in").read_text(encoding="utf-8").splitlines()
        if line.split("#", 1)[0].strip()
    ]
    assert wanted
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{name} is in requirements.in but not in the lock: run scripts/lock-layer"
        assert lock[name][0] in requirement.specifier, (
            f"{name}: the lock has {lock[name][0]}, the list wants {requirement.specifier}"
        )


def test_the_built_layer_holds_exactly_the_lock_and_a_matching_boto3_set(sam_build: Path) -> None:
    # Given the layer as `sam build` made it from the lock
    built = sam_build / "PointsbotLayer" / "python"
    installed = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions(path=[str(built)])}
    lock = _lock()
    # Then every distribution in it is in the lock at the same version, and nothing else is
    assert {n: d.version for n, d in installed.items()} == {n: v for n, (v, _) in lock.items()}
    # And boto3 runs with the botocore and s3transfer it asks for, from its own release
    boto3 = installed["boto3"]
    needs = {canonicalize_name(r.name): r for r in map(Requirement, boto3.requires or [])}
    for name in ("botocore", "s3transfer"):
        assert installed[name].version in needs[name].specifier, (name, installed[name].version, needs[name])
    assert installed["botocore"].version == boto3.version
