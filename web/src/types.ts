export type Role = "owner" | "editor" | "viewer";

export interface Participant {
  user_id: string;
  display_name: string;
  role: Role;
  joined_at: string;
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
  last_activity_at: string;
  /** The live document as plain text (null in lists). */
  files: Record<string, string> | null;
  entry_file: string | null;
  /** Connected now, on any instance (null in lists: the API does not say there). */
  present: { user_id: string; display_name: string }[] | null;
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

/** Who is connected now, or null where the server does not say (session lists). */
export function onlineIds(session: Session): Set<string> | null {
  return session.present ? new Set(session.present.map((p) => p.user_id)) : null;
}

export function ago(iso: string): string {
  const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}
