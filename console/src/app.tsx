// The shell: who is signed in, the navigation their roles allow, and the current screen.
import { useEffect, useState } from "preact/hooks";

import { onSession, signOut, type Session } from "./api";
import { has, isStaff, may } from "./permissions";
import { href, useRoute, type Route } from "./router";
import { AppSide } from "./screens/AppSide";
import { Audit } from "./screens/Audit";
import { ExperimentEditor } from "./screens/ExperimentEditor";
import { ExperimentList } from "./screens/ExperimentList";
import { ExperimentPage } from "./screens/ExperimentPage";
import { Holdouts } from "./screens/Holdouts";
import { Inbox } from "./screens/Inbox";
import { SignIn } from "./screens/SignIn";

export function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const route = useRoute();
  useEffect(() => onSession(setSession), []);

  if (session === undefined) return <p class="muted pad">Checking who you are…</p>;
  if (session === null) return <SignIn />;
  return (
    <>
      {/* Not a fragment link: the hash is the route. */}
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>Skip to content</a>
      <header class="top">
        <a class="brand" href={href.experiments()}>offerlab</a>
        <Nav session={session} route={route} />
        <div class="who">
          <span data-testid="signed-in-as">{session.email ?? session.uid}</span>
          <span class="roles" data-testid="roles">{session.roles.length ? session.roles.join(", ") : "no role"}</span>
          <button type="button" class="ghost" onClick={() => signOut()}>Sign out</button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {isStaff(session) ? <Screen route={route} session={session} /> : <AppSide session={session} />}
      </main>
    </>
  );
}

function Nav({ session, route }: { session: Session; route: Route }) {
  const items: Array<[string, string, boolean, Route["name"][]]> = [
    ["Experiments", href.experiments(), isStaff(session), ["experiments", "experiment", "new", "edit"]],
    ["Approvals", href.inbox(), has(session, "approver"), ["inbox"]],
    ["Holdouts", href.holdouts(), isStaff(session), ["holdouts"]],
    ["Audit", href.audit(), may.audit(session), ["audit"]],
    ["App integration", href.app(), true, ["app"]],
  ];
  return (
    <nav aria-label="Main">
      <ul>
        {items.filter(([, , shown]) => shown).map(([text, to, , names]) => (
          <li key={to}><a href={to} aria-current={names.includes(route.name) ? "page" : undefined}>{text}</a></li>
        ))}
      </ul>
    </nav>
  );
}

function Screen({ route, session }: { route: Route; session: Session }) {
  switch (route.name) {
    case "new": return <ExperimentEditor session={session} />;
    case "edit": return <ExperimentEditor session={session} experimentId={route.id} />;
    case "experiment": return <ExperimentPage session={session} id={route.id} />;
    case "inbox": return <Inbox session={session} />;
    case "holdouts": return <Holdouts session={session} />;
    case "audit": return <Audit session={session} id={route.id} />;
    case "app": return <AppSide session={session} />;
    default: return <ExperimentList session={session} />;
  }
}
