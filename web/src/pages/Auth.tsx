import { useState } from "preact/hooks";
import { ApiError, signIn, signUp } from "../api";
import { navigate } from "../hooks";

export function problemText(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 429) return `Too many attempts: wait ${error.retryAfter ?? 1} s and try again.`;
    const fields = error.problem?.errors?.map((e) => `${e.field.replace(/^body\./, "")}: ${e.message}`);
    return fields?.length ? `${error.message} ${fields.join("; ")}` : error.message;
  }
  return "The server could not be reached. Check your connection and try again.";
}

export function AuthPage({ mode, next }: { mode: "signin" | "signup"; next?: string }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [name, setName] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const signup = mode === "signup";
  const here = location.pathname;
  const after = next ?? (here === "/signin" || here === "/signup" ? "/" : here);

  async function submit(event: Event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (signup) await signUp(email, password, name);
      else await signIn(email, password);
      if (location.pathname !== after) navigate(after, true);
    } catch (e) {
      setError(problemText(e));
    } finally {
      setBusy(false);
    }
  }

  const other = signup ? "/signin" : "/signup";
  return (
    <section class="card narrow" aria-labelledby="auth-title">
      <h1 id="auth-title">{signup ? "Create an account" : "Sign in"}</h1>
      <form onSubmit={submit}>
        {signup && (
          <label>
            Display name
            <input name="display_name" autoComplete="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </label>
        )}
        <label>
          Email
          <input name="email" type="email" required autoComplete="email" value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            required
            minLength={signup ? 8 : 1}
            autoComplete={signup ? "new-password" : "current-password"}
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {signup ? "Create account" : "Sign in"}
        </button>
      </form>
      <p>
        {signup ? "Already have an account? " : "New here? "}
        <a
          href={other}
          onClick={(e) => {
            e.preventDefault();
            if (here.startsWith("/join/")) {
              window.dispatchEvent(new CustomEvent("auth-mode", { detail: signup ? "signin" : "signup" }));
            } else navigate(other);
          }}
        >
          {signup ? "Sign in" : "Create an account"}
        </a>
      </p>
    </section>
  );
}
