// The one way the app talks to the HTTP API: the access token lives in memory only; the
// refresh token is an httpOnly cookie the server sets (refresh_cookie: true) and that
// script never sees. A 401 triggers one refresh and one retry; a 429 tells the banner.

export const API = "/api/v1";

export interface User {
  id: string;
  email: string;
  display_name: string;
}

export interface Problem {
  status: number;
  code: string;
  title?: string;
  detail?: string;
  errors?: { field: string; message: string }[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter: number | null = null,
    readonly problem: Problem | null = null,
  ) {
    super(message);
  }
}

type Listener = () => void;

class Store<T> {
  private listeners = new Set<Listener>();
  constructor(private current: T) {}
  get value(): T {
    return this.current;
  }
  set(value: T): void {
    this.current = value;
    this.listeners.forEach((l) => l());
  }
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** Signed-in user (null: signed out; undefined: not known yet, e.g. during the first refresh). */
export const currentUser = new Store<User | null | undefined>(undefined);
/** Seconds until a rate limit ends, and which limit (null: not limited). */
export const rateLimit = new Store<{ until: number; limit: string } | null>(null);

let accessToken: string | null = null;
let refreshTimer: number | undefined;
let refreshing: Promise<boolean> | null = null;

interface TokenPair {
  user: User;
  access_token: string;
  expires_in: number;
}

function adopt(pair: TokenPair): void {
  accessToken = pair.access_token;
  currentUser.set(pair.user);
  window.clearTimeout(refreshTimer);
  // Refresh a minute before the access token expires, so a request rarely meets a 401.
  const ms = Math.max(10, pair.expires_in - 60) * 1000;
  refreshTimer = window.setTimeout(() => void refresh(), ms);
}

function signedOut(): void {
  accessToken = null;
  window.clearTimeout(refreshTimer);
  currentUser.set(null);
}

/** Trade the refresh cookie for a new access token (single flight). */
export function refresh(): Promise<boolean> {
  refreshing ??= (async () => {
    try {
      const response = await fetch(`${API}/auth/refresh`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: "{}",
        credentials: "same-origin",
      });
      if (response.ok) {
        adopt((await response.json()) as TokenPair);
        return true;
      }
      if (response.status === 429) noteRateLimit(response, await problemOf(response));
      else signedOut();
      return false;
    } catch {
      return false; // offline: keep what we have; the reconnect logic tries again
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

async function problemOf(response: Response): Promise<Problem> {
  try {
    return (await response.json()) as Problem;
  } catch {
    return { status: response.status, code: `http_${response.status}`, detail: response.statusText };
  }
}

function noteRateLimit(response: Response, problem: Problem): number {
  const seconds = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
  const wait = Number.isFinite(seconds) && seconds > 0 ? seconds : 1;
  const until = Date.now() + wait * 1000;
  if (!rateLimit.value || rateLimit.value.until < until) {
    rateLimit.set({ until, limit: (problem as { limit?: string }).limit ?? "api" });
  }
  return wait;
}

export interface RequestOptions {
  body?: unknown;
  signal?: AbortSignal;
  /** For sign-in forms: no refresh-and-retry on 401. */
  anonymous?: boolean;
}

export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const send = (): Promise<Response> => {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if (accessToken && !options.anonymous) headers.Authorization = `Bearer ${accessToken}`;
    return fetch(`${API}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: "same-origin",
      signal: options.signal,
    });
  };
  let response = await send();
  if (response.status === 401 && !options.anonymous && (await refresh())) {
    response = await send();
  }
  if (response.status === 204) return undefined as T;
  if (response.ok) return (await response.json()) as T;
  const problem = await problemOf(response);
  let retryAfter: number | null = null;
  if (response.status === 429) retryAfter = noteRateLimit(response, problem);
  if (response.status === 401 && !options.anonymous) signedOut();
  throw new ApiError(response.status, problem.code, problem.detail ?? problem.title ?? "Request failed", retryAfter, problem);
}

export const get = <T>(path: string, signal?: AbortSignal) => request<T>("GET", path, { signal });
export const post = <T>(path: string, body: unknown = {}) => request<T>("POST", path, { body });
export const patch = <T>(path: string, body: unknown) => request<T>("PATCH", path, { body });
export const del = (path: string) => request<void>("DELETE", path);

export async function signIn(email: string, password: string): Promise<void> {
  adopt(await request<TokenPair>("POST", "/auth/login", { body: { email, password, refresh_cookie: true }, anonymous: true }));
}

export async function signUp(email: string, password: string, displayName: string): Promise<void> {
  const body: Record<string, unknown> = { email, password, refresh_cookie: true };
  if (displayName.trim()) body.display_name = displayName.trim();
  adopt(await request<TokenPair>("POST", "/auth/register", { body, anonymous: true }));
}

export async function signOut(): Promise<void> {
  try {
    await request<void>("POST", "/auth/logout", { body: {}, anonymous: true });
  } finally {
    signedOut();
  }
}

/** The bearer for a fetch the app makes itself (the SSE stream). */
export function authorization(): Record<string, string> {
  return accessToken ? { Authorization: `Bearer ${accessToken}` } : {};
}

/** A single-use 30 s ticket for one WebSocket upgrade (POST /auth/ws-tickets). */
export async function wsTicket(): Promise<string> {
  const { ticket } = await post<{ ticket: string }>("/auth/ws-tickets");
  return ticket;
}

export function wsUrl(path: string): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${API}${path}`;
}

export type { Store };
