"""The state step of the processor chain: between FetchAndCompute and ProduceOutcome, on the consumer's
thread, so batches reach the state in consume order even when several are fetched at once.

It adds the state's outputs to the computed columns, encodes the result batches, and puts the
changelog records' tracker on the batch (the commit step waits for their delivery).
"""

from __future__ import annotations

from processors.processor.collect import encode_results
from processors.processor.compute import ComputeFn
from processors.processor.fetcher import Outcome
from processors.processor.state.manager import StateStores
from streams.steps.strategy import Batch


class ApplyState:
    """``Batch[Outcome]`` with collected columns -> ``Batch[Outcome]`` with encoded result batches."""

    def __init__(self, stores: StateStores, compute: ComputeFn) -> None:
        self._stores = stores
        self._compute = compute

    def __call__(self, batch: Batch[Outcome]) -> Batch[Outcome]:
        outcome = batch.payload
        collected = outcome.collected
        if collected is None:
            return batch
        tracker = self._stores.tracker()
        stateful = self._stores.apply(collected.requests, collected.partitions, collected.columns, tracker)
        encoded, partial = encode_results(
            collected.requests,
            collected.partitions,
            collected.columns,
            self._compute,
            collected.now_ms,
            stateful,
        )
        done = batch.replace(Outcome(encoded, partial, outcome.failures))
        done.trackers.append(tracker)
        return done
