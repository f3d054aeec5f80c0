"""Every name coderoom gives a thing in Redis: keys, the queue, pub/sub channels.

All of them go through `RedisNames`, built from `REDIS_PREFIX` (default: the database's
name, else `coderoom`), so two deployments, or a deployment and its test suite, can share one
Redis without stealing each other's jobs or spending each other's rate limits.

What ends up in Redis, for the prefix `P`:
- rate-limit counters: `P:ratelimit:…` (the `limits` library appends its own parts);
- the execution queue: SAQ's keys `saq:P:executions:…` and `saq:job:P:executions:…` (SAQ
  puts its own `saq:` first and the queue name second) and its channels `saq:job:P:executions:…`;
- WebSocket tickets: `P:ws-ticket:<sha256>` (30 s each, see auth/tickets.py);
- our own channels: `P:auth:invalidate` (principal cache eviction, see auth/principal.py);
- live executions (infra/eventlog.py): the Streams `P:executions:<id>:events` (a run's
  events), `P:executions:<id>:control` (stdin, signals and cancel for the worker running
  it) and `P:sessions:<id>:events` (every run of a session); each expires after its end.

One SAQ key is not named after the queue: the abort marker `saq:abort:<job key>`, which
lives a few seconds. Its job key is the execution's UUID, which no other deployment's
database holds, so it cannot meet another deployment's marker either.

A prefix cannot contain `:` (config.py), so no prefix is the beginning of another's names.
"""

from __future__ import annotations

from dataclasses import dataclass

from coderoom.config import Settings


@dataclass(frozen=True)
class RedisNames:
    prefix: str

    @classmethod
    def of(cls, settings: Settings) -> RedisNames:
        return cls(settings.resolved_redis_prefix)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    @property
    def queue(self) -> str:
        """The SAQ queue name (SAQ builds its keys and channels from it)."""
        return self.key("executions")

    @property
    def ratelimit(self) -> str:
        return self.key("ratelimit")

    def channel(self, name: str) -> str:
        return self.key(name)

    def execution_events(self, execution_id: str) -> str:
        return self.key("executions", execution_id, "events")

    def execution_control(self, execution_id: str) -> str:
        return self.key("executions", execution_id, "control")

    def execution_stdin(self, execution_id: str) -> str:
        """A counter: bytes of stdin sent to the run and not yet read by the program."""
        return self.key("executions", execution_id, "stdin")

    def session_events(self, session_id: str) -> str:
        return self.key("sessions", session_id, "events")
