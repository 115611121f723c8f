"""`kcollect enqueue`: client-id sources, validation, throttling by lag, progress, the enqueue itself."""
