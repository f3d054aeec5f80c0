export type Role = "owner" | "editor" | "viewer";

export interface Participant {
  user_id: string;
  display_name: string;
  role: Role;
  joined_at: string;
  online?: boolean;
  present?: boolean;
}

export interface Session {
  id: string;
  title: string;
  description: string;
  language: string;
  source: string;
  version: number;
  owner: { id: string; display_name: string };
  participants: Participant[];
  created_at: string;
  updated_at: string;
  last_activity_at?: string | null;
  present?: { user_id: string; display_name?: string }[];
  online?: string[] | number;
}

export interface Language {
  id: string;
  name: string;
  version: string;
  file_name: string;
  extensions: string[];
}

export interface Invite {
  id: string;
  role: "editor" | "viewer";
  label: string;
  expires_at: string | null;
  max_uses: number | null;
  uses: number;
  revoked: boolean;
  created_at: string;
  token?: string;
  url?: string;
}

export interface Execution {
  id: string;
  language: string;
  status: string;
  exit_code: number | null;
  signal_name: string | null;
  stdout: string;
  stderr: string;
  compile_output: string;
  wall_time_ms: number | null;
  cpu_time_ms: number | null;
  memory_kb: number | null;
  message: string | null;
  created_by: string;
  created_at: string;
  finished_at: string | null;
}

export const TERMINAL = new Set([
  "succeeded", "failed", "compile_error", "timed_out", "memory_exceeded",
  "output_exceeded", "internal_error", "cancelled",
]);

export function roleOf(session: Session, userId: string): Role | null {
  return session.participants.find((p) => p.user_id === userId)?.role ?? null;
}

/** Who is online, from whichever presence field the server provides. */
export function onlineIds(session: Session): Set<string> {
  const ids = new Set<string>();
  for (const p of session.participants) if (p.online || p.present) ids.add(p.user_id);
  if (Array.isArray(session.present)) for (const p of session.present) ids.add(p.user_id);
  if (Array.isArray(session.online)) for (const id of session.online) ids.add(id);
  return ids;
}

export function ago(iso: string): string {
  const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}
