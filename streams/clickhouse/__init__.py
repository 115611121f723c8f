"""ClickHouse plumbing: the client builder, server features, migrations, the driver's column writer."""
