"""Executions: programs submitted to the sandbox and their results."""
