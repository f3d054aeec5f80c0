import { render } from "preact";
import { useEffect } from "preact/hooks";
import { currentUser, rateLimit, refresh, signOut } from "./api";
import { navigate, useCountdown, usePath, useStore } from "./hooks";
import { AuthPage } from "./pages/Auth";
import { SessionsPage } from "./pages/Sessions";
import { RoomPage } from "./pages/Room";
import { JoinPage } from "./pages/Join";
import "./styles.css";

function RateLimitBanner() {
  const limited = useStore(rateLimit);
  const seconds = useCountdown(limited?.until ?? null);
  useEffect(() => {
    if (limited && seconds === 0) rateLimit.set(null);
  }, [limited, seconds]);
  if (!limited || seconds === 0) return null;
  return (
    <div class="banner warning" role="alert" data-testid="rate-limit">
      Too many requests. You can try again in <strong>{seconds}</strong> second{seconds === 1 ? "" : "s"}.
    </div>
  );
}

function Header() {
  const user = useStore(currentUser);
  return (
    <header class="topbar">
      <a class="brand" href="/" onClick={(e) => (e.preventDefault(), navigate("/"))}>
        coderoom
      </a>
      {user && (
        <nav aria-label="Account" class="account">
          <span class="who">{user.display_name}</span>
          <button type="button" class="secondary" onClick={async () => (await signOut(), navigate("/signin"))}>
            Sign out
          </button>
        </nav>
      )}
    </header>
  );
}

function Routes() {
  const path = usePath();
  const user = useStore(currentUser);
  if (user === undefined) return <p class="loading" aria-live="polite">Loading…</p>;
  const join = path.match(/^\/join\/([^/]+)$/);
  if (join) return <JoinPage token={decodeURIComponent(join[1])} />;
  if (path === "/signin" || path === "/signup") return <AuthPage mode={path === "/signup" ? "signup" : "signin"} />;
  if (!user) return <AuthPage mode="signin" />;
  const room = path.match(/^\/s\/([0-9a-f-]{36})$/);
  if (room) return <RoomPage sessionId={room[1]} key={room[1]} />;
  return <SessionsPage />;
}

function App() {
  useEffect(() => {
    // A reload: the access token was in memory only; the refresh cookie gets a new one.
    void refresh().then((ok) => {
      if (!ok && currentUser.value === undefined) currentUser.set(null);
    });
  }, []);
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <Header />
      <RateLimitBanner />
      <main id="main" tabIndex={-1}>
        <Routes />
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
