// The app's side: how a web or mobile app asks "which offer does this user see?" (get_offer), with the
// JS SDK snippet and a live call as the signed-in user. Swift and Kotlin: docs/console.md.
import { useState } from "preact/hooks";

import * as api from "../api";
import type { Session } from "../api";
import { Badge, ErrorNote, Field, Panel, TextInput } from "../components/ui";
import { useAction } from "../hooks";
import { may } from "../permissions";
import { href } from "../router";
import type { Arm, GetOfferRequest, OfferAnswer } from "../types";

const ARM_TONE: Record<Arm, string> = { SHIPPED: "violet", TREATMENT: "blue", CONTROL: "grey", HOLDOUT: "amber", NOT_ENROLLED: "grey" };

const SNIPPET = `import { initializeApp } from "firebase/app";
import { getAuth, signInAnonymously } from "firebase/auth";
import { getFunctions, httpsCallable } from "firebase/functions";

const app = initializeApp(firebaseConfig);           // your web app's config
await signInAnonymously(getAuth(app));               // every call needs an ID token (API.md §1)
const getOffer = httpsCallable(getFunctions(app, "us-central1"), "get_offer");

// The one offer for this placement; the user is the caller (an end user asks for itself only).
const { data } = await getOffer({ placement: "onboarding_paywall" });
// data = { userId, arm: "HOLDOUT" | "CONTROL" | "TREATMENT" | "SHIPPED" | "NOT_ENROLLED",
//          experimentId, offerConfig, placement, reason? }
showPaywall(data.offerConfig ?? builtInDefault);      // null offerConfig: keep the app's default`;

export function AppSide({ session }: { session: Session }) {
  const [placement, setPlacement] = useState("");
  const [experimentId, setExperimentId] = useState("");
  const [userId, setUserId] = useState("");
  const anyUser = may.askForAnyUser(session);
  const [answer, setAnswer] = useState<OfferAnswer | null>(null);
  const [answers, setAnswers] = useState(0);  // how many answers came back: each new one is visibly new
  const ask = useAction(async () => {
    // Only the fields that are filled: without placement or experimentId the answer is for placement "default".
    const request: GetOfferRequest = {};
    if (placement.trim()) request.placement = placement.trim();
    if (experimentId.trim()) request.experimentId = experimentId.trim();
    if (anyUser && userId.trim()) request.userId = userId.trim();
    setAnswer(await api.getOffer(request));
    setAnswers((n) => n + 1);
  });
  return (
    <>
      <div class="page-head"><h1>App integration</h1></div>
      <Panel title="Ask for an offer from a web app (Firebase JS SDK)">
        <p>An app calls the <code>get_offer</code> callable with the signed-in user's ID token: the same callable a Swift or Kotlin
          app reaches through its Firebase SDK (snippets in <code>docs/console.md</code>). The answer is deterministic for a user
          (API.md §2) and the first exposure is recorded once.</p>
        <pre class="code" aria-label="JavaScript snippet">{SNIPPET}</pre>
      </Panel>
      <Panel title={anyUser ? "Try it" : "Try it as yourself"}>
        <form onSubmit={(e) => { e.preventDefault(); ask.run(); }} noValidate aria-label="Try get_offer">
          <div class="cols">
            <Field label="Placement (optional)" name="try-placement">{(p) => <TextInput {...p} value={placement} onValue={setPlacement} />}</Field>
            <Field label="Experiment id (optional)" name="try-experiment">{(p) => <TextInput {...p} value={experimentId} onValue={setExperimentId} />}</Field>
            {anyUser ? (
              <Field label="User id (optional)" name="try-user" hint="Your role may ask for any user, as a backend does (API.md §1); blank: yourself.">
                {(p) => <TextInput {...p} value={userId} onValue={setUserId} />}
              </Field>
            ) : null}
          </div>
          <button type="submit" class="primary" disabled={ask.busy}>{ask.busy ? "Asking…" : `get_offer for ${anyUser && userId.trim() ? userId.trim() : session.email ?? session.uid}`}</button>
        </form>
        <ErrorNote error={ask.error} prefix="get_offer refused" />
        {answer ? (
          <>
            <p data-testid="offer-summary">
              <Badge value={answer.arm} tone={ARM_TONE[answer.arm]} /> {answer.userId} in placement <strong>{answer.placement ?? "default"}</strong>
              {answer.experimentId ? <> · decided by <a href={href.experiment(answer.experimentId)}>{answer.experimentId}</a></> : null}
              {answer.reason ? <span class="muted"> · reason: {answer.reason}</span> : null}
              {" · "}{answer.offerConfig ? <>offer <code>{JSON.stringify(answer.offerConfig)}</code></> : <span class="muted">no offer: the app keeps its built-in default</span>}
            </p>
            <pre class="code" data-testid="offer-answer" data-answers={answers}>{JSON.stringify(answer, null, 2)}</pre>
          </>
        ) : null}
      </Panel>
    </>
  );
}
