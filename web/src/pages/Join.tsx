import { useEffect, useState } from "preact/hooks";
import { ApiError, currentUser, post } from "../api";
import { navigate, useStore } from "../hooks";
import { AuthPage, problemText } from "./Auth";

export function JoinPage({ token }: { token: string }) {
  const user = useStore(currentUser);
  const [mode, setMode] = useState<"signin" | "signup">("signup");
  const [failure, setFailure] = useState<{ title: string; text: string } | null>(null);

  useEffect(() => {
    const onMode = (e: Event) => setMode((e as CustomEvent<"signin" | "signup">).detail);
    window.addEventListener("auth-mode", onMode);
    return () => window.removeEventListener("auth-mode", onMode);
  }, []);

  useEffect(() => {
    if (!user) return;
    let cancelled = false;
    post<{ id: string }>("/sessions/join", { token })
      .then((session) => !cancelled && navigate(`/s/${session.id}`, true))
      .catch((error) => {
        if (cancelled) return;
        if (error instanceof ApiError && error.status === 404)
          setFailure({ title: "This invite link does not work", text: "No invite has this link. Check that you copied all of it, or ask the session's owner for a new one." });
        else if (error instanceof ApiError && error.status === 410)
          setFailure({ title: "This invite has ended", text: "It expired, was revoked, or has been used as many times as allowed. Ask the session's owner for a new link." });
        else setFailure({ title: "Could not join", text: problemText(error) });
      });
    return () => {
      cancelled = true;
    };
  }, [user, token]);

  if (!user)
    return (
      <>
        <p class="card narrow notice">You have been invited to a coding session. Sign in or create an account to join it.</p>
        <AuthPage mode={mode} next={location.pathname} key={mode} />
      </>
    );
  if (failure)
    return (
      <section class="card narrow" aria-labelledby="join-title">
        <h1 id="join-title">{failure.title}</h1>
        <p role="alert">{failure.text}</p>
        <p>
          <a href="/" onClick={(e) => (e.preventDefault(), navigate("/"))}>
            Go to your sessions
          </a>
        </p>
      </section>
    );
  return <p class="loading" aria-live="polite">Joining…</p>;
}
