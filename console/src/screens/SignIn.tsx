import { useState } from "preact/hooks";

import { ApiError, isEmulated, signIn } from "../api";
import { ErrorNote } from "../components/ui";

// The people `scripts/console_people.py` creates in the Auth emulator each time the suite starts.
const DEMO_PEOPLE: Array<[string, string]> = [
  ["pm@company.com", "experimenter"], ["ceo@company.com", "approver"], ["cfo@company.com", "approver"],
  ["analyst@company.com", "analyst"], ["admin@company.com", "admin"],
];

export function SignIn() {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <main class="signin" id="main">
      <h1>offerlab console</h1>
      <p class="muted">Run, approve and audit offer experiments.</p>
      <form onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setError(null);
        try { await signIn(email.trim(), password); } catch (err) { setError(err as ApiError); } finally { setBusy(false); }
      }}>
        <label for="email">Email</label>
        <input id="email" type="email" autocomplete="username" required value={email} onInput={(e) => setEmail((e.target as HTMLInputElement).value)} />
        <label for="password">Password</label>
        <input id="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
        <button type="submit" class="primary" disabled={busy}>{busy ? "Signing in…" : "Sign in"}</button>
        <ErrorNote error={error} />
      </form>
      {isEmulated() ? (
        <aside class="demo-people" aria-label="Demo sign-ins">
          <h2>Demo people (Auth emulator)</h2>
          <p>Password <code>offerlab-demo</code> for each (docs/console.md).</p>
          <ul>
            {DEMO_PEOPLE.map(([who, role]) => (
              <li key={who}><button type="button" class="link" onClick={() => setEmail(who)}>{who}</button> <span class="muted">{role}</span></li>
            ))}
          </ul>
        </aside>
      ) : null}
    </main>
  );
}
