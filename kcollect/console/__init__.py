"""The web console: runs, run detail with dead letters and replay, lag, schedules (docs/console.md)."""
