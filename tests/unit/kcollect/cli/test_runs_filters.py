"""The runs filters of `kcollect runs list` and the console's runs page (pure): one vocabulary of states."""

from __future__ import annotations

import pytest

from kcollect.console import pages
from kcollect.console.data import run_matches
from kcollect.console.server import Refused, _run_state
from streams.runs.status import RunState


def test_filters_by_schedule_and_state() -> None:
    row = {"schedule": "nightly", "state": "enqueued", "complete": False}
    assert run_matches(row, None, None)
    assert run_matches(row, "nightly", RunState.enqueued) and run_matches(row, None, RunState.incomplete)
    assert not run_matches(row, "hourly", None) and not run_matches(row, None, RunState.complete)
    assert not run_matches(row, None, RunState.failed)
    done = {"schedule": None, "state": "no-manifest", "complete": True}
    assert run_matches(done, None, RunState.complete) and run_matches(done, None, RunState.no_manifest)


def test_the_console_offers_and_accepts_the_same_states_as_the_cli() -> None:
    form = pages.runs_main({"filter": {"schedule": None, "state": None}, "schedules": [], "runs": []})
    for state in RunState:
        assert f'<option value="{state.value}"' in form
        assert _run_state(state.value) is state
    with pytest.raises(Refused) as refused:
        _run_state("running")
    assert refused.value.status == 400 and "incomplete" in str(refused.value)
