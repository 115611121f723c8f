"""Tests against a current ClickHouse in-process (chdb): DDL, views, the cookbook, new-server features."""
