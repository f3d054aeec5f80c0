import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import * as Y from "yjs";
import { ApiError, currentUser, del, get } from "../api";
import { navigate, useStore } from "../hooks";
import { LiveRoom, CLOSE_FORBIDDEN, CLOSE_GONE, type Peer } from "../live";
import { createEditor, type EditorHandle } from "../editor";
import { languageMode } from "../modes";
import { Runs, verdict, type RunView } from "../runs";
import { roleOf, TERMINAL, type Execution, type Session } from "../types";
import { problemText } from "./Auth";
import { stripAnsi } from "../ansi";
import { OwnerPanel } from "./Owner";

export function RoomPage({ sessionId }: { sessionId: string }) {
  const user = useStore(currentUser)!;
  const [session, setSession] = useState<Session | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [gone, setGone] = useState<string | null>(null);

  async function load(): Promise<Session | null> {
    try {
      const s = await get<Session>(`/sessions/${sessionId}`);
      setSession(s);
      return s;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) setGone("This session does not exist, or you are no longer part of it.");
      else setError(problemText(e));
      return null;
    }
  }

  useEffect(() => {
    void load();
    // Roles and presence change under us: look again now and then (the live socket also
    // tells us at once when our role is lowered or we are removed).
    const timer = window.setInterval(() => void load(), 10_000);
    return () => window.clearInterval(timer);
  }, [sessionId]);

  if (gone)
    return (
      <section class="card narrow">
        <h1>Session unavailable</h1>
        <p role="alert">{gone}</p>
        <a href="/" onClick={(e) => (e.preventDefault(), navigate("/"))}>Back to your sessions</a>
      </section>
    );
  if (!session) return <p aria-live="polite">{error ?? "Opening the session…"}</p>;
  const role = roleOf(session, user.id);
  if (!role) return <p role="alert">You are not a participant of this session.</p>;
  return <Room session={session} role={role} reload={load} onGone={setGone} />;
}

function Room({ session, role, reload, onGone }: { session: Session; role: "owner" | "editor" | "viewer"; reload: () => Promise<Session | null>; onGone: (why: string) => void }) {
  const user = useStore(currentUser)!;
  const [, setTick] = useState(0);
  const rerender = () => setTick((n) => n + 1);
  const viewer = role === "viewer";
  // A fresh document whenever the right to edit changes: edits the server refused after a
  // downgrade would otherwise linger in this copy, never to be accepted.
  const live = useMemo(
    () =>
      new LiveRoom(
        session.id,
        user,
        (code) => {
          if (code === CLOSE_GONE) onGone("This session was deleted, or you were removed from it.");
          else if (code === CLOSE_FORBIDDEN) void reload().then((s) => s && live.reconnect());
        },
        () => void reload(),
      ),
    [session.id, viewer],
  );
  const runs = useMemo(() => new Runs(session.id, rerender), [session.id]);
  const [status, setStatus] = useState<string>("connecting");
  const [synced, setSynced] = useState(false);
  const [file, setFile] = useState<string | null>(null);
  const [peers, setPeers] = useState<Peer[]>([]);
  const [fileNames, setFileNames] = useState<string[]>([]);
  const [runError, setRunError] = useState<string | null>(null);
  const [history, setHistory] = useState<Execution[]>([]);
  const canEdit = !viewer;

  useEffect(() => {
    setSynced(false);
    const onStatus = ({ status }: { status: string }) => setStatus(status);
    const onSync = (s: boolean) => {
      setSynced(s);
      if (s) setFile((f) => f ?? live.entryFile());
    };
    const onFiles = () => {
      setFileNames([...live.files.keys()].sort());
      setFile((f) => (f && live.files.has(f) ? f : live.entryFile()));
    };
    const onAwareness = () => setPeers(live.peers());
    live.provider.on("status", onStatus);
    live.provider.on("sync", onSync);
    live.files.observe(onFiles);
    live.provider.awareness.on("change", onAwareness);
    onAwareness();
    return () => {
      live.destroy();
      runs.destroy();
    };
  }, [live]);

  async function loadHistory() {
    try {
      const page = await get<{ items: Execution[] }>(`/sessions/${session.id}/executions?limit=10`);
      setHistory(page.items);
    } catch {
      /* the history is secondary; the banner shows rate limits */
    }
  }
  useEffect(() => void loadHistory(), [session.id]);
  const latest = runs.latest ? runs.runs.get(runs.latest) : undefined;
  const latestDone = latest ? TERMINAL.has(latest.status) : false;
  useEffect(() => {
    if (latestDone) void loadHistory();
  }, [latestDone, runs.latest]);

  async function run() {
    if (!canEdit) return;
    setRunError(null);
    try {
      const stdin = (document.getElementById("stdin") as HTMLTextAreaElement | null)?.value ?? "";
      await runs.run(stdin);
    } catch (e) {
      setRunError(problemText(e));
    }
  }
  const runRef = useRef(run);
  runRef.current = run;

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !(e.target as HTMLElement).closest(".cm-editor")) {
        e.preventDefault();
        void runRef.current();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  const reconnecting = status !== "connected" || !runs.connected;
  return (
    <div class="room">
      <div class="room-head">
        <h1>{session.title}</h1>
        <span class="tag">{session.language}</span>
        <span class="tag" data-testid="role">{role}</span>
        <span class={`status ${reconnecting ? "off" : "on"}`} role="status" aria-live="polite" data-testid="connection">
          {status === "connected" ? (synced ? "Live" : "Syncing…") : status === "connecting" ? "Connecting…" : "Reconnecting… your edits are kept"}
        </span>
      </div>
      <aside class="side" aria-label="Files and people">
        <h2>Files</h2>
        <ul class="files">
          {fileNames.map((name) => (
            <li key={name}>
              <button type="button" class={name === file ? "file current" : "file"} aria-current={name === file ? "true" : undefined} onClick={() => setFile(name)}>
                {name}
              </button>
            </li>
          ))}
        </ul>
        <h2>Here now</h2>
        <ul class="presence" data-testid="presence">
          {peers.map((p) => (
            <li key={p.clientId}>
              <span class="dot" style={{ background: p.colour }} aria-hidden="true" />
              {p.name}
              {p.self ? " (you)" : ""}
            </li>
          ))}
        </ul>
        {role === "owner" && <OwnerPanel session={session} reload={reload} />}
        {role !== "owner" && (
          <button type="button" class="secondary" onClick={async () => (await del(`/sessions/${session.id}/participants/${user.id}`), navigate("/"))}>
            Leave session
          </button>
        )}
      </aside>
      <section class="editor-pane" aria-label="Editor">
        {!canEdit && <p class="notice" data-testid="read-only">You are a viewer: the editor is read-only and follows live edits.</p>}
        {synced && file && live.files.get(file) ? (
          <Editor text={live.files.get(file)!} live={live} readOnly={!canEdit} language={session.language} file={file} onRun={run} />
        ) : (
          <div class="editor-placeholder">
            <p aria-live="polite">{status === "connected" ? "Loading the document…" : "Connecting to the live document…"}</p>
            <pre>{session.source}</pre>
          </div>
        )}
      </section>
      <section class="run-pane" aria-label="Run">
        <div class="run-bar">
          <button type="button" onClick={run} disabled={!canEdit} data-testid="run" title="Run (Ctrl/Cmd-Enter)">
            Run
          </button>
          <button type="button" class="secondary" onClick={() => void runs.stop()} disabled={!latest || latestDone}>
            Stop
          </button>
          <span class="verdict" data-testid="verdict" aria-live="polite">
            {latest ? (latest.result ? verdict(latest.result) : latest.status.replace(/_/g, " ")) : canEdit ? "Ctrl/Cmd-Enter runs the code" : ""}
          </span>
        </div>
        {runError && <p class="error" role="alert">{runError}</p>}
        <Output run={latest} />
        <StdinBox runs={runs} canEdit={canEdit} />
        <History items={history} />
      </section>
    </div>
  );
}

function Editor({ text, live, readOnly, language, file, onRun }: { text: Y.Text; live: LiveRoom; readOnly: boolean; language: string; file: string; onRun: () => void }) {
  const host = useRef<HTMLDivElement>(null);
  const handle = useRef<EditorHandle | null>(null);
  const onRunRef = useRef(onRun);
  onRunRef.current = onRun;
  useEffect(() => {
    handle.current = createEditor(host.current!, text, live.provider.awareness, {
      readOnly,
      mode: [],
      label: `Code editor: ${file}`,
      onRun: () => onRunRef.current(),
    });
    let cancelled = false;
    void languageMode(language).then((mode) => !cancelled && handle.current?.setMode(mode));
    return () => {
      cancelled = true;
      handle.current?.destroy();
      handle.current = null;
    };
  }, [text]);
  useEffect(() => handle.current?.setReadOnly(readOnly), [readOnly]);
  return <div class="editor" ref={host} data-testid="editor" data-readonly={String(readOnly)} />;
}

function Output({ run }: { run: RunView | undefined }) {
  const pane = useRef<HTMLPreElement>(null);
  useEffect(() => {
    const el = pane.current;
    if (el) el.scrollTop = el.scrollHeight;
  });
  return (
    <pre class="output" ref={pane} data-testid="output" role="log" aria-label="Program output" aria-live="polite" tabIndex={0}>
      {run?.chunks.map((chunk, i) => (
        <span key={i} class={chunk.kind}>
          {chunk.text}
        </span>
      ))}
    </pre>
  );
}

function StdinBox({ runs, canEdit }: { runs: Runs; canEdit: boolean }) {
  const [line, setLine] = useState("");
  if (!canEdit) return null;
  if (runs.streaming === false)
    return (
      <label class="stdin">
        Input for the next run (stdin)
        <textarea id="stdin" rows={2} spellcheck={false} />
      </label>
    );
  const live = runs.acceptsInput();
  return (
    <form
      class="stdin"
      onSubmit={(e) => {
        e.preventDefault();
        runs.sendInput(line);
        setLine("");
      }}
    >
      <label>
        Input to the running program
        <input data-testid="stdin" value={line} disabled={!live} onInput={(e) => setLine(e.currentTarget.value)} placeholder={live ? "Type a line and press Enter" : "Available while your run is going"} />
      </label>
      <button type="submit" disabled={!live}>Send</button>
      <button type="button" class="secondary" disabled={!live} onClick={() => runs.sendEof()}>
        End input
      </button>
    </form>
  );
}

function History({ items }: { items: Execution[] }) {
  if (!items.length) return null;
  return (
    <section aria-labelledby="history-title" class="history">
      <h2 id="history-title">Run history</h2>
      <ul>
        {items.map((r) => (
          <li key={r.id}>
            <details>
              <summary>
                {new Date(r.created_at).toLocaleTimeString()} — {verdict(r)}
              </summary>
              <pre class="output small">
                {r.compile_output && <span class="compile">{stripAnsi(r.compile_output)}</span>}
                {r.stdout && <span class="stdout">{stripAnsi(r.stdout)}</span>}
                {r.stderr && <span class="stderr">{stripAnsi(r.stderr)}</span>}
              </pre>
            </details>
          </li>
        ))}
      </ul>
    </section>
  );
}
