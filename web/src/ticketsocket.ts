// A WebSocket that fetches a fresh single-use ticket before every connection and presents
// it as the `coderoom.ticket.<ticket>` subprotocol, so no token ever appears in a URL.
// y-websocket constructs a new socket for each (re)connection through its WebSocketPolyfill
// option, synchronously; this class looks like a WebSocket at once and connects when the
// ticket arrives.
import { wsTicket } from "./api";

type Handler<E> = ((event: E) => void) | null;

export class TicketedWebSocket {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readonly CLOSING = 2;
  readonly CLOSED = 3;

  binaryType: BinaryType = "arraybuffer";
  onopen: Handler<Event> = null;
  onmessage: Handler<MessageEvent> = null;
  onclose: Handler<CloseEvent> = null;
  onerror: Handler<Event> = null;
  private socket: WebSocket | null = null;
  private closed = false;
  private state = 0;

  constructor(readonly url: string, _protocols?: string | string[]) {
    void this.open();
  }

  get readyState(): number {
    return this.socket?.readyState ?? this.state;
  }

  private async open(): Promise<void> {
    let ticket: string;
    try {
      ticket = await wsTicket();
    } catch {
      this.fail(4401, "no ticket");
      return;
    }
    if (this.closed) return;
    const socket = new WebSocket(this.url, [`coderoom.ticket.${ticket}`]);
    socket.binaryType = this.binaryType;
    socket.onopen = (e) => this.onopen?.(e);
    socket.onmessage = (e) => this.onmessage?.(e);
    socket.onerror = (e) => this.onerror?.(e);
    socket.onclose = (e) => {
      this.state = 3;
      this.onclose?.(e);
    };
    this.socket = socket;
  }

  private fail(code: number, reason: string): void {
    this.state = 3;
    this.onclose?.(new CloseEvent("close", { code, reason, wasClean: false }));
  }

  send(data: Parameters<WebSocket["send"]>[0]): void {
    this.socket?.send(data);
  }

  close(code?: number, reason?: string): void {
    this.closed = true;
    if (this.socket) this.socket.close(code, reason);
    else this.state = 3;
  }
}
