"""The state step of the processor chain: between FetchAndCompute and ProduceOutcome, on the consumer's
thread, so batches reach the state in consume order even when several are fetched at once.

It adds the state's outputs to the computed columns, encodes the result batches, and puts the
changelog records' tracker on the batch (the commit step waits for their delivery).
"""

from __future__ import annotations

from processors.processor.fetcher import Fetcher, Outcome, kept
from processors.processor.state.manager import StateStores
from streams.steps.strategy import Batch


class ApplyState:
    """``Batch[Outcome]`` with collected columns -> ``Batch[Outcome]`` with encoded result batches."""

    def __init__(self, stores: StateStores, fetcher: Fetcher) -> None:
        self._stores = stores
        self._fetcher = fetcher

    def __call__(self, batch: Batch[Outcome]) -> Batch[Outcome]:
        outcome = batch.payload
        collected = outcome.collected
        if collected is None:
            return batch
        tracker = self._stores.tracker()
        requests, partitions, columns = kept(collected.batch, collected.keep, collected.columns)
        stateful = self._stores.apply(requests, partitions, columns, tracker)
        done = batch.replace(
            self._fetcher.encode(
                collected.batch,
                collected.keep,
                collected.columns,
                collected.now_ms,
                outcome.failures,
                stateful,
            )
        )
        done.trackers.append(tracker)
        return done
