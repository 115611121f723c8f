"""The run domain: run manifests, run identity, run status and the run checker."""
