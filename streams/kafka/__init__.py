"""Kafka plumbing: topic admin, the batch producer, dead-letter records, exact end offsets."""
