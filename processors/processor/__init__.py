"""The processor service: decode, fetch from subsystems, compute, produce results, retries, DLQ."""
