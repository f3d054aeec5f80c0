// The live document of a session over the standard Yjs sync + awareness protocol
// (y-websocket against /api/v1/sessions/{id}/live). Document shape, as the server keeps
// it: Y.Map "files" (file name → Y.Text) and Y.Map "meta" (entry file, language).
import * as Y from "yjs";
import { WebsocketProvider } from "y-websocket";
import * as encoding from "lib0/encoding";
import * as decoding from "lib0/decoding";
import { encodeAwarenessUpdate } from "y-protocols/awareness";
import { readAuthMessage } from "y-protocols/auth";
import { API } from "./api";
import { TicketedWebSocket } from "./ticketsocket";

// Close codes (coderoom.core.closecodes) after which reconnecting cannot help, or must
// wait for the app to look at the session again (role lost, session gone).
export const CLOSE_FORBIDDEN = 4403;
export const CLOSE_GONE = 4404;
export const CLOSE_UNAUTHENTICATED = 4401;
const TERMINAL = new Set([CLOSE_FORBIDDEN, CLOSE_GONE, 4413, 1008]);
const MESSAGE_AWARENESS = 1; // y-protocols message types
const MESSAGE_AUTH = 2;

type AwarenessChange = { added: number[]; updated: number[]; removed: number[] };

const PALETTE = ["#d1242f", "#1a7f37", "#0969da", "#8250df", "#bf3989", "#9a6700", "#0a7b83", "#cf222e"];

export function colourFor(id: string): string {
  let hash = 0;
  for (const ch of id) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

export interface Peer {
  clientId: number;
  name: string;
  colour: string;
  userId: string;
  self: boolean;
}

export type LiveStatus = "connecting" | "connected" | "disconnected";

export class LiveRoom {
  readonly doc = new Y.Doc();
  readonly provider: WebsocketProvider;
  readonly files: Y.Map<Y.Text>;
  readonly meta: Y.Map<unknown>;

  constructor(
    sessionId: string,
    user: { id: string; display_name: string },
    onClosed: (code: number, reason: string) => void,
    onPermissionDenied: () => void = () => {},
  ) {
    this.files = this.doc.getMap<Y.Text>("files");
    this.meta = this.doc.getMap("meta");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.provider = new WebsocketProvider(`${scheme}//${location.host}${API}/sessions`, `${sessionId}/live`, this.doc, {
      WebSocketPolyfill: TicketedWebSocket as unknown as typeof WebSocket,
      // Another tab of the same browser must not bypass the server's role checks.
      disableBc: true,
      maxBackoffTime: 5000,
      shouldReconnect: (event: CloseEvent) => !TERMINAL.has(event.code),
    } as ConstructorParameters<typeof WebsocketProvider>[3]);
    // Stock y-websocket re-sends every awareness change it hears, other people's included.
    // The server closes a connection that speaks for a client id it does not own (1008
    // "awareness of another client": nobody may move or remove someone else's cursor), so
    // send only this client's own state.
    const provider = this.provider as unknown as { _awarenessUpdateHandler: (c: AwarenessChange, o: unknown) => void };
    this.provider.awareness.off("update", provider._awarenessUpdateHandler);
    this.provider.awareness.on("update", this.sendOwnAwareness);
    // The server refuses a viewer's edit with y-protocols' "permission denied" (the socket
    // stays open): our role was lowered, and the app should look again at once.
    const handlers = (this.provider as unknown as { messageHandlers: ((...args: unknown[]) => void)[] }).messageHandlers;
    handlers[MESSAGE_AUTH] = (_encoder: unknown, decoder: unknown) =>
      readAuthMessage(decoder as decoding.Decoder, this.doc, () => onPermissionDenied());
    const colour = colourFor(user.id);
    this.provider.awareness.setLocalStateField("user", {
      id: user.id,
      name: user.display_name,
      color: colour,
      colorLight: `${colour}33`,
    });
    this.provider.on("connection-close", (event: CloseEvent | null) => {
      if (event && TERMINAL.has(event.code)) onClosed(event.code, event.reason);
    });
  }

  private sendOwnAwareness = ({ added, updated, removed }: AwarenessChange): void => {
    const own = this.doc.clientID;
    if (![...added, ...updated, ...removed].includes(own)) return;
    const ws = this.provider.ws;
    if (!this.provider.wsconnected || !ws || ws.readyState !== WebSocket.OPEN) return;
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MESSAGE_AWARENESS);
    encoding.writeVarUint8Array(encoder, encodeAwarenessUpdate(this.provider.awareness, [own]));
    ws.send(encoding.toUint8Array(encoder));
  };

  entryFile(): string | null {
    const entry = this.meta.get("entry") ?? this.meta.get("entry_file");
    if (typeof entry === "string" && this.files.has(entry)) return entry;
    const names = [...this.files.keys()].sort();
    return names[0] ?? null;
  }

  peers(): Peer[] {
    const peers: Peer[] = [];
    this.provider.awareness.getStates().forEach((state, clientId) => {
      const user = state.user as { id?: string; name?: string; color?: string } | undefined;
      if (!user?.name) return;
      peers.push({
        clientId,
        name: user.name,
        colour: user.color ?? "#888",
        userId: user.id ?? "",
        self: clientId === this.doc.clientID,
      });
    });
    return peers.sort((a, b) => Number(b.self) - Number(a.self) || a.name.localeCompare(b.name));
  }

  reconnect(): void {
    this.provider.disconnect();
    this.provider.connect();
  }

  destroy(): void {
    this.provider.awareness.off("update", this.sendOwnAwareness);
    this.provider.destroy();
    this.doc.destroy();
  }
}
