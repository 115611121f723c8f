"""Every KCOLLECT_* variable the code reads is one the unknown-variable warning knows: a variable named
in the source (through ``streams.settings.names.variable`` or written out) and missing from
``known_variables`` would be reported to its users as a misspelling."""

from __future__ import annotations

import re
from pathlib import Path

from streams.settings.model import known_variables, unknown_variables

ROOT = Path(__file__).resolve().parents[4]
PACKAGES = ("schemas", "streams", "producers", "processors", "kcollect", "bench")
CALL = re.compile(r'variable\("([a-z_0-9]+)"\)')
LITERAL = re.compile(r"\bKCOLLECT_[A-Z][A-Z0-9_]*[A-Z0-9]\b")


def variables_in_source() -> dict[str, str]:
    """Each variable named in the source, with one file that names it."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            names = [f"KCOLLECT_{name.upper()}" for name in CALL.findall(text)] + LITERAL.findall(text)
            for name in names:
                found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def test_the_source_names_variables() -> None:
    found = variables_in_source()
    assert "KCOLLECT_BOOTSTRAP_SERVERS" in found and "KCOLLECT_LOCAL_BROKER" in found


def test_every_variable_the_source_reads_is_known() -> None:
    known = known_variables()
    unknown = {name: where for name, where in variables_in_source().items() if name not in known}
    assert not unknown, f"read by the code but warned about as unknown: {unknown}"


def test_an_unlisted_variable_is_still_warned_about() -> None:
    assert unknown_variables({"KCOLLECT_LOCAL_BROKR": "kafka"}) == [
        "KCOLLECT_LOCAL_BROKR is not a kcollect setting and is ignored (did you mean KCOLLECT_LOCAL_BROKER?)"
    ]
