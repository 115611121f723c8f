"""The sink service: decode results, window them into columns, insert into ClickHouse, DLQ."""
