"""Load the Lambda handlers from functions/ the way Lambda does: by file."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

Handler = Callable[[dict, object], object]

FUNCTIONS = {
    "interactions": ROOT / "functions" / "interactions" / "app.py",
    "health": ROOT / "functions" / "health" / "app.py",
    "worker": ROOT / "functions" / "worker" / "app.py",
    "achievements": ROOT / "functions" / "achievements" / "app.py",
    "keepalive": ROOT / "functions" / "keepalive" / "app.py",
    "register_commands": ROOT / "functions" / "register_commands" / "app.py",
    "admin_site": ROOT / "functions" / "admin_site" / "app.py",
    "api": ROOT / "functions" / "api" / "app.py",
}

_loaded: dict[str, Handler] = {}


def load(name: str, attribute: str = "lambda_handler") -> Handler:
    """The handler of function `name`, imported once per process like a warm container."""
    key = f"{name}:{attribute}"
    if key not in _loaded:
        path = FUNCTIONS[name]
        spec = importlib.util.spec_from_file_location(f"pointsbot_fn_{name}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _loaded[key] = getattr(module, attribute)
    return _loaded[key]


def available(name: str) -> bool:
    return FUNCTIONS[name].exists()
