// Runs of a session as everyone in the room sees them: the session's event stream
// (GET /sessions/{id}/events, SSE) delivers every run's status, output and result; the
// runner steers its own run (stdin, EOF, Stop) over the attach WebSocket. Where the server
// has no streaming routes, runs are polled and their output appears when they end.
import { get, post, wsUrl, wsTicket, ApiError } from "./api";
import { streamEvents, NotStreamable } from "./sse";
import { stripAnsi } from "./ansi";
import { TERMINAL, type Execution } from "./types";

export type ChunkKind = "stdout" | "stderr" | "compile" | "info";
export interface Chunk {
  kind: ChunkKind;
  text: string;
}
export interface RunView {
  id: string;
  status: string;
  chunks: Chunk[];
  result: Execution | null;
  mine: boolean;
  startedAt: number;
  firstOutputAt: number | null;
}

export class Runs {
  runs = new Map<string, RunView>();
  latest: string | null = null;
  streaming: boolean | null = null; // unknown until the stream answers
  connected = true;
  private abort = new AbortController();
  private attach: WebSocket | null = null;
  private attachedTo: string | null = null;
  private pendingInput: object[] = [];

  constructor(private sessionId: string, private onChange: () => void) {
    void this.follow();
  }

  private async follow(): Promise<void> {
    try {
      await streamEvents(
        `/sessions/${this.sessionId}/events`,
        (event) => {
          this.streaming = true;
          this.apply(event.event, event.data);
        },
        this.abort.signal,
        (connected) => {
          this.streaming = true;
          this.connected = connected;
          this.onChange();
        },
      );
    } catch (error) {
      if (error instanceof NotStreamable) {
        this.streaming = false;
        this.onChange();
      }
    }
  }

  private view(id: string, mine = false): RunView {
    let run = this.runs.get(id);
    if (!run) {
      run = { id, status: "queued", chunks: [], result: null, mine, startedAt: performance.now(), firstOutputAt: null };
      this.runs.set(id, run);
      if (!this.latest || mine || !this.runs.get(this.latest)?.mine || TERMINAL.has(this.runs.get(this.latest)!.status)) this.latest = id;
    }
    return run;
  }

  private apply(kind: string, raw: string): void {
    let data: Record<string, unknown>;
    try {
      data = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return;
    }
    const id = (data.execution_id ?? data.id) as string | undefined;
    if (!id) return;
    const run = this.view(id);
    if (kind === "stdout" || kind === "stderr" || kind === "compile") {
      const text = stripAnsi(String(data.data ?? ""));
      if (!text) return;
      run.firstOutputAt ??= performance.now();
      const last = run.chunks[run.chunks.length - 1];
      if (last && last.kind === kind) last.text += text;
      else run.chunks.push({ kind, text });
    } else if (kind === "status") {
      run.status = String(data.status ?? run.status);
    } else if (kind === "lagged") {
      run.chunks.push({ kind: "info", text: "\n[some output was skipped; the full result follows]\n" });
    } else if (kind === "result") {
      run.result = data as unknown as Execution;
      run.status = run.result.status;
      if (run.chunks.length === 0 || run.chunks.every((c) => c.kind === "info")) fillFromResult(run);
      if (this.attachedTo === id) this.closeAttach();
    }
    this.onChange();
  }

  async run(stdin: string): Promise<void> {
    const body: Record<string, unknown> = this.streaming ? { interactive: true } : { stdin };
    const execution = await post<Execution>(`/sessions/${this.sessionId}/run`, body);
    const run = this.view(execution.id, true);
    run.mine = true;
    this.latest = execution.id;
    if (TERMINAL.has(execution.status)) {
      run.result = execution;
      run.status = execution.status;
      fillFromResult(run);
    } else if (this.streaming) {
      void this.openAttach(execution.id);
    } else {
      void this.poll(execution.id);
    }
    this.onChange();
  }

  private async poll(id: string): Promise<void> {
    for (let delay = 100; !this.abort.signal.aborted; delay = Math.min(1000, delay * 2)) {
      await new Promise((r) => setTimeout(r, delay));
      let execution: Execution;
      try {
        execution = await get<Execution>(`/sandbox/executions/${id}`);
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) return;
        continue;
      }
      const run = this.view(id);
      run.status = execution.status;
      if (TERMINAL.has(execution.status)) {
        run.result = execution;
        fillFromResult(run);
        this.onChange();
        return;
      }
      this.onChange();
    }
  }

  private async openAttach(id: string): Promise<void> {
    this.closeAttach();
    this.attachedTo = id;
    let ticket: string;
    try {
      ticket = await wsTicket();
    } catch {
      if (this.attachedTo === id) this.closeAttach();
      this.onChange();
      return;
    }
    if (this.attachedTo !== id) return;
    const socket = new WebSocket(wsUrl(`/sandbox/executions/${id}/attach`), [`coderoom.ticket.${ticket}`]);
    this.attach = socket;
    socket.onopen = () => {
      for (const message of this.pendingInput.splice(0)) socket.send(JSON.stringify(message));
    };
    // Output comes from the session stream; from this socket only refusals matter.
    socket.onmessage = (event) => {
      let message: { type?: string; message?: string };
      try {
        message = JSON.parse(String(event.data)) as typeof message;
      } catch {
        return;
      }
      if (message.type === "error" && message.message) {
        this.runs.get(id)?.chunks.push({ kind: "info", text: `\n[${message.message}]\n` });
        this.onChange();
      }
    };
    socket.onclose = () => {
      if (this.attach !== socket) return;
      this.attach = null;
      this.attachedTo = null;
      this.pendingInput = [];
      this.onChange();
    };
  }

  private closeAttach(): void {
    this.attach?.close(1000);
    this.attach = null;
    this.attachedTo = null;
    this.pendingInput = [];
  }

  private sendControl(message: object): boolean {
    if (this.attach?.readyState === WebSocket.OPEN) {
      this.attach.send(JSON.stringify(message));
      return true;
    }
    // Still fetching the ticket or opening the socket: keep it for `onopen` (the server
    // holds stdin sent before the program starts, so nothing typed early is lost).
    if (this.attachedTo !== null) {
      this.pendingInput.push(message);
      return true;
    }
    return false;
  }

  /** Whether the latest run takes input now (my own, interactive, still going). */
  acceptsInput(): boolean {
    const run = this.latest ? this.runs.get(this.latest) : undefined;
    return Boolean(run && run.mine && this.attachedTo === run.id && !TERMINAL.has(run.status));
  }

  sendInput(line: string): void {
    const run = this.latest ? this.runs.get(this.latest) : undefined;
    if (!run) return;
    if (this.sendControl({ type: "stdin", data: `${line}\n` })) {
      run.chunks.push({ kind: "info", text: `${line}\n` });
      this.onChange();
    }
  }

  sendEof(): void {
    this.sendControl({ type: "eof" });
  }

  async stop(): Promise<void> {
    const id = this.latest;
    if (!id) return;
    if (this.attachedTo === id && this.sendControl({ type: "cancel" })) return;
    await post(`/sandbox/executions/${id}/cancel`);
    if (!this.streaming) void this.poll(id);
  }

  destroy(): void {
    this.abort.abort();
    this.closeAttach();
  }
}

function fillFromResult(run: RunView): void {
  const r = run.result!;
  run.chunks = run.chunks.filter((c) => c.kind === "info");
  if (r.compile_output) run.chunks.push({ kind: "compile", text: stripAnsi(r.compile_output) });
  if (r.stdout) run.chunks.push({ kind: "stdout", text: stripAnsi(r.stdout) });
  if (r.stderr) run.chunks.push({ kind: "stderr", text: stripAnsi(r.stderr) });
  if (run.chunks.some((c) => c.kind !== "info")) run.firstOutputAt ??= performance.now();
}

export function verdict(r: Execution): string {
  const parts = [r.status.replace(/_/g, " ")];
  if (r.exit_code !== null) parts.push(`exit code ${r.exit_code}${r.signal_name ? ` (${r.signal_name})` : ""}`);
  if (r.wall_time_ms !== null) parts.push(`${r.wall_time_ms} ms`);
  if (r.memory_kb !== null) parts.push(`${(r.memory_kb / 1024).toFixed(1)} MB`);
  return parts.join(" · ");
}
