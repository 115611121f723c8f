"""Settings: the model, its sources, and its mapping onto the Kafka and ClickHouse clients."""
