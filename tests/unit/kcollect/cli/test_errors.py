"""Exit codes are numbered in one place, ``kcollect.cli.errors.ExitCode``: no command exits with a number
of its own, and the help text says every code."""

from __future__ import annotations

import ast
from pathlib import Path

from kcollect.cli.errors import ERROR_EXIT_CODES, EXIT_CODES_HELP, ExitCode

ROOT = Path(__file__).resolve().parents[4]
EXITS = {"SystemExit", "Exit", "exit", "_exit"}  # SystemExit(n), typer.Exit(n), sys.exit(n), os._exit(n)


def numbered_exits(path: Path, root: Path = ROOT) -> list[str]:
    """Each exit in ``path`` given a literal number."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", "")
            if name in EXITS and isinstance(node.args[0].value, int):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_no_command_exits_with_a_number_of_its_own() -> None:
    assert [hit for path in sorted((ROOT / "kcollect").rglob("*.py")) for hit in numbered_exits(path)] == []


def test_the_check_sees_every_way_to_exit(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "raise SystemExit(1)\nraise typer.Exit(6)\nsys.exit(2)\nos._exit(97)\n"
        "raise SystemExit(ExitCode.FAILED)\nsys.exit(run())\n"
    )
    assert numbered_exits(module, tmp_path) == ["m.py:1", "m.py:2", "m.py:3", "m.py:4"]


def test_the_help_says_every_code_and_the_known_errors_use_them() -> None:
    for code in ExitCode:
        assert f"; {code.value} " in EXIT_CODES_HELP or EXIT_CODES_HELP.startswith(
            f"Exit codes: {code.value} "
        )
    assert {code for _, code, _ in ERROR_EXIT_CODES} <= set(ExitCode)
