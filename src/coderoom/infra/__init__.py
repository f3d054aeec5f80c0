"""Connections to the outside world: database, Redis, logging. No domain knowledge."""
