"""Which value check a run's verification can make: the simulated subsystems' values are predictable."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from streams.settings.model import Settings

if TYPE_CHECKING:
    from streams.runs.checker import ValueCheck


def value_check_for(settings: Settings) -> ValueCheck | None:
    """``simulated_check`` when every subsystem of the deployment is the built-in simulated one;
    otherwise None (values cannot be predicted; ``--values simulated`` for ``kcollect simulate``)."""
    from processors.processor.config import load_config
    from processors.processor.subsystems.simulated import simulated_check

    path = Path(settings.processor_config) if settings.processor_config else None
    config = load_config(path)
    return simulated_check if all(s.kind == "simulated" for s in config.subsystems) else None
