// Server-sent events over fetch (EventSource cannot send Authorization), following the
// SSE format: "event:", "data:" (joined by newlines), "id:", blank line ends an event.
// Reconnects with Last-Event-ID so nothing is missed or repeated.
import { authorization, refresh, API } from "./api";

export interface SseEvent {
  event: string;
  data: string;
  id: string | null;
}

export class NotStreamable extends Error {}

export async function streamEvents(
  path: string,
  onEvent: (event: SseEvent) => void,
  signal: AbortSignal,
  onStatus: (connected: boolean) => void = () => {},
): Promise<void> {
  let lastId: string | null = null;
  let attempt = 0;
  while (!signal.aborted) {
    let response: Response;
    try {
      const headers: Record<string, string> = { Accept: "text/event-stream", ...authorization() };
      if (lastId) headers["Last-Event-ID"] = lastId;
      response = await fetch(`${API}${path}`, { headers, signal, credentials: "same-origin" });
    } catch {
      if (signal.aborted) return;
      onStatus(false);
      await backoff(++attempt, signal);
      continue;
    }
    if (response.status === 401 && (await refresh())) continue;
    if (response.status === 404 || response.status === 405) throw new NotStreamable(String(response.status));
    if (!response.ok || !response.body) {
      onStatus(false);
      await backoff(++attempt, signal);
      continue;
    }
    attempt = 0;
    onStatus(true);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = "message";
    let data: string[] = [];
    let id: string | null = null;
    let ended = false;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let newline: number;
        while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
          if (line === "") {
            if (data.length) {
              if (id !== null) lastId = id;
              onEvent({ event, data: data.join("\n"), id });
              if (event === "end" || event === "close") ended = true;
            }
            event = "message";
            data = [];
            id = null;
            continue;
          }
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const raw = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") event = raw;
          else if (field === "data") data.push(raw);
          else if (field === "id") id = raw;
        }
      }
    } catch {
      if (signal.aborted) return;
    }
    if (ended) return;
    onStatus(false);
    await backoff(++attempt, signal);
  }
}

function backoff(attempt: number, signal: AbortSignal): Promise<void> {
  const ms = Math.min(5000, 200 * 2 ** attempt);
  return new Promise((resolve) => {
    const timer = window.setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      window.clearTimeout(timer);
      resolve();
    });
  });
}
