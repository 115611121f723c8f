"""`kcollect scheduler`: slot math, cron, leadership lock, backfill, the scheduler loop."""
