import { useEffect, useState } from "preact/hooks";
import { currentUser, del, get, patch, post } from "../api";
import { navigate, useStore } from "../hooks";
import { ago, onlineIds, roleOf, type Language, type Session } from "../types";
import { problemText } from "./Auth";

export function SessionsPage() {
  const user = useStore(currentUser)!;
  const [sessions, setSessions] = useState<Session[] | null>(null);
  const [languages, setLanguages] = useState<Language[]>([]);
  const [error, setError] = useState<string | null>(null);

  async function load() {
    try {
      const page = await get<{ items: Session[] }>("/sessions?limit=50");
      setSessions(page.items);
    } catch (e) {
      setError(problemText(e));
    }
  }

  useEffect(() => {
    void load();
    get<Language[]>("/sandbox/languages").then(setLanguages, (e) => setError(problemText(e)));
  }, []);

  return (
    <div class="page">
      <h1>Your sessions</h1>
      {error && <p class="error" role="alert">{error}</p>}
      <CreateSession languages={languages} />
      <section aria-labelledby="list-title">
        <h2 id="list-title">Sessions</h2>
        {sessions === null ? (
          <p aria-live="polite">Loading…</p>
        ) : sessions.length === 0 ? (
          <p>No sessions yet: create one above, or open an invite link.</p>
        ) : (
          <ul class="sessions">
            {sessions.map((s) => (
              <SessionRow key={s.id} session={s} userId={user.id} onChange={load} onError={setError} />
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}

function SessionRow({ session, userId, onChange, onError }: { session: Session; userId: string; onChange: () => void; onError: (e: string) => void }) {
  const role = roleOf(session, userId);
  const [renaming, setRenaming] = useState(false);
  const [title, setTitle] = useState(session.title);
  const online = onlineIds(session);
  const onlineNames = online && session.participants.filter((p) => online.has(p.user_id)).map((p) => p.display_name);

  async function rename(e: Event) {
    e.preventDefault();
    try {
      await patch(`/sessions/${session.id}`, { title });
      setRenaming(false);
      onChange();
    } catch (err) {
      onError(problemText(err));
    }
  }

  async function remove() {
    if (!confirm(`Delete “${session.title}” for everyone? This cannot be undone.`)) return;
    try {
      await del(`/sessions/${session.id}`);
      onChange();
    } catch (err) {
      onError(problemText(err));
    }
  }

  return (
    <li class="session-row">
      {renaming ? (
        <form onSubmit={rename} class="inline">
          <label>
            New title
            <input value={title} required maxLength={200} onInput={(e) => setTitle(e.currentTarget.value)} />
          </label>
          <button type="submit">Save</button>
          <button type="button" class="secondary" onClick={() => setRenaming(false)}>Cancel</button>
        </form>
      ) : (
        <a class="session-title" href={`/s/${session.id}`} onClick={(e) => (e.preventDefault(), navigate(`/s/${session.id}`))}>
          {session.title}
        </a>
      )}
      <span class="meta">
        <span class="tag">{session.language}</span>
        <span class="tag">{role}</span>
        {onlineNames && <span>{onlineNames.length ? `online: ${onlineNames.join(", ")}` : "nobody online"}</span>}
        <span>active {ago(session.last_activity_at)}</span>
      </span>
      {!renaming && role !== "viewer" && (
        <span class="actions">
          <button type="button" class="secondary" onClick={() => setRenaming(true)} aria-label={`Rename ${session.title}`}>Rename</button>
          {role === "owner" && (
            <button type="button" class="danger" onClick={remove} aria-label={`Delete ${session.title}`}>Delete</button>
          )}
        </span>
      )}
    </li>
  );
}

const STARTERS: Record<string, string> = {
  python: 'name = input("Your name? ")\nprint(f"Hello, {name}!")\n',
  javascript: 'console.log("Hello from coderoom");\n',
  c: '#include <stdio.h>\n\nint main(void) {\n    printf("Hello from coderoom\\n");\n    return 0;\n}\n',
  cpp: '#include <iostream>\n\nint main() {\n    std::cout << "Hello from coderoom" << std::endl;\n}\n',
  bash: 'echo "Hello from coderoom"\n',
};

function CreateSession({ languages }: { languages: Language[] }) {
  const [title, setTitle] = useState("");
  const [language, setLanguage] = useState("python");
  const [source, setSource] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function create(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const session = await post<Session>("/sessions", { title, language, source: source || STARTERS[language] || "" });
      navigate(`/s/${session.id}`);
    } catch (err) {
      setError(problemText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="card" aria-labelledby="create-title">
      <h2 id="create-title">New session</h2>
      <form onSubmit={create} class="grid">
        <label>
          Title
          <input name="title" required maxLength={200} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
        </label>
        <label>
          Language
          <select name="language" value={language} onChange={(e) => setLanguage(e.currentTarget.value)}>
            {(languages.length ? languages : [{ id: "python", name: "Python", version: "" } as Language]).map((l) => (
              <option value={l.id} key={l.id}>
                {l.name} {l.version}
              </option>
            ))}
          </select>
        </label>
        <label class="wide">
          Starter file (optional; a hello-world is used when empty)
          <textarea name="source" rows={4} spellcheck={false} value={source} onInput={(e) => setSource(e.currentTarget.value)} />
        </label>
        {error && <p class="error wide" role="alert">{error}</p>}
        <button type="submit" disabled={busy}>Create session</button>
      </form>
    </section>
  );
}
