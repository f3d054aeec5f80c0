import { useEffect, useState } from "preact/hooks";
import { del, get, patch, post } from "../api";
import type { Invite, Session } from "../types";
import { problemText } from "./Auth";

export function OwnerPanel({ session, reload }: { session: Session; reload: () => Promise<unknown> }) {
  const [invites, setInvites] = useState<Invite[]>([]);
  const [created, setCreated] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  const [role, setRole] = useState<"editor" | "viewer">("editor");
  const [hours, setHours] = useState("72");
  const [maxUses, setMaxUses] = useState("");
  const [error, setError] = useState<string | null>(null);

  async function loadInvites() {
    try {
      setInvites(await get<Invite[]>(`/sessions/${session.id}/invites`));
    } catch (e) {
      setError(problemText(e));
    }
  }
  useEffect(() => void loadInvites(), [session.id]);

  async function create(e: Event) {
    e.preventDefault();
    setError(null);
    try {
      const invite = await post<Invite>(`/sessions/${session.id}/invites`, {
        role,
        expires_in_hours: hours ? Number(hours) : null,
        max_uses: maxUses ? Number(maxUses) : null,
      });
      // The server's `url` (PUBLIC_URL-aware) is the link to share.
      setCreated(invite.url ?? `${location.origin}/join/${encodeURIComponent(invite.token!)}`);
      setCopied(false);
      void loadInvites();
    } catch (err) {
      setError(problemText(err));
    }
  }

  async function copy() {
    if (!created) return;
    try {
      await navigator.clipboard.writeText(created);
      setCopied(true);
    } catch {
      (document.getElementById("invite-link") as HTMLInputElement | null)?.select();
    }
  }

  async function act(action: () => Promise<unknown>) {
    setError(null);
    try {
      await action();
      await reload();
      void loadInvites();
    } catch (err) {
      setError(problemText(err));
    }
  }

  return (
    <div class="owner">
      <h2>People</h2>
      <ul class="people">
        {session.participants.map((p) => (
          <li key={p.user_id}>
            <span>{p.display_name}</span>
            {p.role === "owner" ? (
              <span class="tag">owner</span>
            ) : (
              <>
                <label class="sr-only" for={`role-${p.user_id}`}>Role of {p.display_name}</label>
                <select
                  id={`role-${p.user_id}`}
                  value={p.role}
                  data-testid={`role-${p.display_name}`}
                  onChange={(e) => act(() => patch(`/sessions/${session.id}/participants/${p.user_id}`, { role: e.currentTarget.value }))}
                >
                  <option value="editor">editor</option>
                  <option value="viewer">viewer</option>
                </select>
                <button type="button" class="danger small" aria-label={`Remove ${p.display_name}`} onClick={() => act(() => del(`/sessions/${session.id}/participants/${p.user_id}`))}>
                  Remove
                </button>
              </>
            )}
          </li>
        ))}
      </ul>
      <h2>Invite</h2>
      <form onSubmit={create} class="invite-form">
        {/* Labelled by `for`, not by wrapping: a wrapped select's chosen option would
            become part of its accessible name ("Role editor (can edit and run)"). */}
        <label for="invite-role">Role</label>
        <select id="invite-role" class="field" value={role} name="invite-role" onChange={(e) => setRole(e.currentTarget.value as "editor" | "viewer")}>
          <option value="editor">editor (can edit and run)</option>
          <option value="viewer">viewer (read-only)</option>
        </select>
        <label>
          Expires after (hours, empty: never)
          <input type="number" min={1} value={hours} onInput={(e) => setHours(e.currentTarget.value)} />
        </label>
        <label>
          Maximum uses (empty: unlimited)
          <input type="number" min={1} value={maxUses} onInput={(e) => setMaxUses(e.currentTarget.value)} />
        </label>
        <button type="submit">Create invite link</button>
      </form>
      {created && (
        <div class="invite-link">
          <label>
            Invite link (shown once)
            <input id="invite-link" data-testid="invite-link" readOnly value={created} onFocus={(e) => e.currentTarget.select()} />
          </label>
          <button type="button" onClick={copy}>{copied ? "Copied" : "Copy link"}</button>
        </div>
      )}
      {error && <p class="error" role="alert">{error}</p>}
      {invites.length > 0 && (
        <ul class="invites" aria-label="Invites">
          {invites.map((i) => (
            <li key={i.id}>
              {i.role}, used {i.uses}
              {i.max_uses ? `/${i.max_uses}` : ""}
              {i.revoked ? ", revoked" : i.expires_at ? `, until ${new Date(i.expires_at).toLocaleString()}` : ", no expiry"}
              {!i.revoked && (
                <button type="button" class="secondary small" onClick={() => act(() => del(`/sessions/${session.id}/invites/${i.id}`))}>
                  Revoke
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
