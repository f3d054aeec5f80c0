"""Live sessions: the session's files as a shared Yjs document, edited over WebSockets.

Modules, from the bottom up:
- `document`: the document's shape (files, meta), pure functions on a pycrdt Doc;
- `protocol`: y-protocols framing (sync step 1/2, update, awareness), parsed defensively;
- `models` / `store`: the durable update log and its compaction into snapshots;
- `bus`: fan-out of accepted updates and awareness to other instances (Redis pub/sub);
- `room` / `hub`: the rooms loaded in this process, their connections, roles and caps;
- `documents`: the view the sessions and executions domains read and write through;
- `endpoints`: the WebSocket route.
"""
