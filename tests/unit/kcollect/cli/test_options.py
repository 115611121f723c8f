"""An option several commands share is declared once, in ``kcollect.cli.options``: no option's help text is
written twice in the CLI's modules (the same words twice are one option declared twice)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]


def option_helps(paths: list[Path], root: Path = ROOT) -> dict[str, list[str]]:
    """Each ``typer.Option`` help text and where it is written."""
    places: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "Option":
                for keyword in node.keywords:
                    if keyword.arg == "help" and isinstance(keyword.value, ast.Constant):
                        places[str(keyword.value.value)].append(f"{path.relative_to(root)}:{node.lineno}")
    return places


def repeated(places: dict[str, list[str]]) -> list[str]:
    return [f"{text!r}: {', '.join(where)}" for text, where in sorted(places.items()) if len(where) > 1]


def test_no_option_is_declared_twice() -> None:
    places = option_helps(sorted((ROOT / "kcollect" / "cli").glob("*.py")))
    assert len(places) > 50  # the walk sees the commands' options
    assert repeated(places) == []


def test_the_check_sees_an_option_written_twice(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]\n')
    (tmp_path / "b.py").write_text(
        'def f(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,\n'
        '      n: Annotated[int, typer.Option(help="How many.")] = 1) -> None: ...\n'
    )
    found = repeated(option_helps(sorted(tmp_path.glob("*.py")), tmp_path))
    assert found == ["'Print JSON.': a.py:1, b.py:1"]
