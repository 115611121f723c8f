"""What a run's verification can check: the simulated subsystems' values (predictable), and the
deployment's compute function with its metric names (computed values follow from the metrics)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from streams.settings.model import Settings

if TYPE_CHECKING:
    from streams.runs.checker import ComputeCheck, ValueCheck


def value_check_for(settings: Settings) -> ValueCheck | None:
    """``simulated_check`` when every subsystem of the deployment is the built-in simulated one;
    otherwise None (values cannot be predicted; ``--values simulated`` for ``kcollect simulate``)."""
    from processors.processor.config import load_config
    from processors.processor.subsystems.simulated import simulated_check

    path = Path(settings.processor_config) if settings.processor_config else None
    config = load_config(path)
    return simulated_check if all(s.kind == "simulated" for s in config.subsystems) else None


def compute_for(settings: Settings) -> tuple[ComputeCheck, tuple[str, ...]]:
    """The deployment's compute function and its configured metric names (its processor config)."""
    from processors.processor.config import load_config, resolve_compute

    path = Path(settings.processor_config) if settings.processor_config else None
    config = load_config(path)
    return resolve_compute(config.compute), config.metrics
