"""Each interaction imports its own command's module only (dispatch._MODULE_OF), so a cold first
/balance does not load the admin, store or season code; the map must name, for every command,
the module that registers it, or that command would not be found."""

from __future__ import annotations

import subprocess
import sys

from pointsbot.commands import catalog
from pointsbot.commands.context import _AUTOCOMPLETE
from pointsbot.commands.dispatch import _MODULE_OF, _REGISTRY, _load_commands


def test_every_command_is_registered_by_the_module_the_map_names():
    _load_commands()  # every module
    registered = {path: spec.fn.__module__ for path, spec in _REGISTRY.items()}
    registered.update({f"{path} (autocomplete)": fn.__module__ for path, fn in _AUTOCOMPLETE.items()})
    assert len(registered) > 25
    wrong = {
        path: module
        for path, module in registered.items()
        if module != f"pointsbot.commands.{_MODULE_OF.get(path.partition(' ')[0])}"
    }
    assert wrong == {}
    # and every slash command of the catalog (what Discord can send) has its module named
    assert {c["name"] for c in catalog.SLASH_COMMANDS} <= set(_MODULE_OF)


def test_a_balance_loads_the_member_commands_and_no_admin_store_or_season_code():
    code = (
        "import sys\n"
        "from pointsbot.commands.dispatch import _REGISTRY, _load_commands\n"
        "_load_commands('balance')\n"
        "print('balance' in _REGISTRY, 'points add' in _REGISTRY, sorted(m for m in sys.modules if m in "
        "('pointsbot.commands.admin', 'pointsbot.commands.store', 'pointsbot.commands.seasons', "
        "'pointsbot.community.seasons', 'pointsbot.community.store', 'pointsbot.community.webhooks')))\n"
        "_load_commands('a command nobody defined')\n"
        "print('points add' in _REGISTRY, 'shop' in _REGISTRY)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["True False []", "True True"]
