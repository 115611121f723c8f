"""The step framework: the step contract, the consume loop, commits, the service runner, crash points."""
