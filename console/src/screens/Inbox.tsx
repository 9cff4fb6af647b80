// An approver's inbox: what waits for MY approval (a launch, or a ship under §10), with what the
// approver needs to decide: hypothesis, risks, the launch checklist, who approved already.
import { useState } from "preact/hooks";

import * as api from "../api";
import type { Session } from "../api";
import { LaunchChecklist } from "../components/Checklist";
import { Approvals, Hypothesis } from "../components/Definition";
import { Badge, Empty, ErrorNote, KeyValues, Loading, Panel } from "../components/ui";
import { interval, label, num, pct, pValue, toDate, when } from "../format";
import { useAction, useAsync } from "../hooks";
import { approvedBy, has, may } from "../permissions";
import { href } from "../router";
import type { Analysis, Experiment, HoldoutCohort, RolloutPlan } from "../types";

interface Item {
  experiment: Experiment; cohort: HoldoutCohort | null; plan: RolloutPlan | null; creationEvent: boolean | null;
  /** For a ship approval: the latest analysis, the evidence the ship rests on. */
  latest: Analysis | null;
}

async function load(session: Session): Promise<{ waiting: Item[]; decided: Experiment[] }> {
  const email = (session.email ?? "").toLowerCase();
  const mine = await api.listExperimentsForApprover(email);
  const waiting = mine.filter((e) => may.approve(session, e));
  const decided = mine.filter((e) => !waiting.includes(e) && approvedBy(e, email));
  const items = await Promise.all(waiting.map(async (experiment) => {
    const ship = experiment.status === "SHIP_PENDING_APPROVAL";
    const [cohort, plan, creationEvent, analyses] = await Promise.all([
      experiment.holdoutCohortId ? api.getCohort(experiment.holdoutCohortId) : Promise.resolve(null),
      api.getRolloutPlan(experiment.experimentId),
      api.hasCreationEvent(experiment.experimentId),
      ship ? api.listAnalyses(experiment.experimentId) : Promise.resolve([] as Analysis[]),
    ]);
    const latest = analyses.sort((a, b) => (toDate(a.createdAt)?.getTime() ?? 0) - (toDate(b.createdAt)?.getTime() ?? 0)).pop() ?? null;
    return { experiment, cohort, plan, creationEvent, latest };
  }));
  return { waiting: items, decided };
}

/** Every watched limit in a line: absolute and relative guardrails, and GUARDRAIL KPIs (API.md §11). */
function guardrailSummary(e: Experiment): string {
  const limits = (e.guardrails ?? []).map((g) => {
    const bounds = [g.maxThreshold != null ? `≤ ${g.maxThreshold}` : "", g.minThreshold != null ? `≥ ${g.minThreshold}` : "",
      g.maxRelativeDelta != null ? `at most ${g.maxRelativeDelta} % worse than control` : ""].filter(Boolean).join(", ");
    return `${g.kpiName} ${bounds} → ${g.violationAction}`;
  });
  const kpis = (e.kpis ?? []).filter((k) => k.type === "GUARDRAIL").map((k) =>
    `${k.name} (guardrail KPI, ${label(k.direction).toLowerCase()}${k.threshold != null ? `, ±${num(k.threshold * 100, 2)} % vs control` : ""})`);
  return [...limits, ...kpis].join("; ");
}

export function Inbox({ session }: { session: Session }) {
  const data = useAsync(() => load(session), [session.uid]);
  if (!has(session, "approver")) return <Empty>The inbox is for approvers.</Empty>;
  return (
    <>
      <div class="page-head">
        <h1>Waiting for your approval</h1>
        <button type="button" class="ghost" onClick={data.reload} disabled={data.loading}>Refresh</button>
      </div>
      <ErrorNote error={data.error} prefix="Could not load your inbox" />
      {!data.data ? <Loading what="your inbox" /> : (
        <>
          {!data.data.waiting.length ? <Empty>Nothing waits for your approval.</Empty> : null}
          {data.data.waiting.map((item) => <InboxItem key={item.experiment.experimentId} item={item} onDone={data.reload} />)}
          {data.data.decided.length ? (
            <Panel title="Approved by you">
              <ul class="plain">
                {data.data.decided.map((e) => <li key={e.experimentId}><a href={href.experiment(e.experimentId)}>{e.name}</a> <Badge value={e.status} /></li>)}
              </ul>
            </Panel>
          ) : null}
        </>
      )}
    </>
  );
}

function InboxItem({ item, onDone }: { item: Item; onDone: () => void }) {
  const e = item.experiment;
  const ship = e.status === "SHIP_PENDING_APPROVAL";
  const [comment, setComment] = useState("");
  const [reason, setReason] = useState("");
  const approve = useAction(() => api.approveExperiment(e.experimentId, comment.trim() || undefined), onDone);
  const reject = useAction(() => api.rejectExperiment(e.experimentId, reason.trim()), onDone);
  const id = e.experimentId;
  return (
    <section class="panel inbox-item" aria-labelledby={`inbox-${id}`} data-experiment={id}>
      <header class="panel-head">
        <h2 id={`inbox-${id}`}><a href={href.experiment(id)}>{e.name}</a></h2>
        <div class="panel-actions"><Badge value={ship ? "SHIP" : "LAUNCH"} tone={ship ? "violet" : "blue"} /> <Badge value={e.status} /></div>
      </header>
      <p class="muted">
        {label(e.offerType)} by {e.author} · placement {e.placement ?? "default"} · treatment {pct(e.treatmentPercentage, 0)} · submitted {when(e.lastChange?.at)}
      </p>
      {ship && e.ship ? (
        <div class="ship-request" data-ship-arm={e.ship.arm}>
          <p><strong>Ship {e.ship.arm}</strong> to every user of placement <strong>{e.placement ?? "default"}</strong> outside its holdouts, asked by {e.ship.requestedBy} {when(e.ship.requestedAt)}: “{e.ship.reason}”</p>
          <KeyValues rows={[
            ["Offer everyone would get", <code>{JSON.stringify((e.ship.arm === "TREATMENT" ? e.offerConfig : e.controlConfig) ?? {})}</code>],
            ["Evidence (latest analysis)", item.latest
              ? <span data-testid="ship-evidence">{item.latest.metric}: corrected {pct(item.latest.correctedPercentChange, 2, true)}, interval {interval(item.latest.confidenceInterval, 2)}, always valid {interval(item.latest.sequential?.confidenceInterval ?? null, 2)}, p {pValue(item.latest.pValue)} · {label(item.latest.dataQuality)} quality · {label(item.latest.recommendation)}</span>
              : <strong class="bad">no analysis recorded</strong>],
          ]} />
        </div>
      ) : null}
      <Hypothesis experiment={e} />
      <KeyValues rows={[
        ["Treatment offer", <code>{JSON.stringify(e.offerConfig ?? {})}</code>],
        ["Status quo", <code>{JSON.stringify(e.controlConfig ?? {})}</code>],
        ["Primary KPI", (e.kpis ?? []).filter((k) => k.type === "PRIMARY").map((k) => `${k.name} (${k.metric}, ${label(k.direction).toLowerCase()})`).join(", ") || "none"],
        ["Guardrails", guardrailSummary(e) || "none"],
        ["Holdout", item.cohort ? `${item.cohort.name} · ${item.cohort.percentage} % · ${label(item.cohort.status)}` : e.holdoutCohortId],
        ["Rollout", item.plan ? item.plan.stages.map((s) => `${s.percentage} %`).join(" → ") : "no plan yet"],
      ]} />
      {!ship ? (
        <>
          <h3>Launch checklist</h3>
          <LaunchChecklist experimentId={e.experimentId} version={e.version} />
        </>
      ) : null}
      <h3>{ship ? "Ship approvals so far" : "Approvals so far"}</h3>
      {ship ? <Approvals experiment={e} book={e.ship?.approvals ?? {}} label="Ship approvals" /> : <Approvals experiment={e} />}
      <div class="decide cols">
        <form onSubmit={(ev) => { ev.preventDefault(); approve.run(); }} aria-label={`Approve ${e.name}`}>
          <label for={`approve-${id}`}>Comment (optional)</label>
          <textarea id={`approve-${id}`} rows={2} value={comment} onInput={(ev) => setComment((ev.target as HTMLTextAreaElement).value)} />
          <button type="submit" class="primary" disabled={approve.busy}>{approve.busy ? "Approving…" : ship ? "Approve shipping" : "Approve launch"}</button>
          <ErrorNote error={approve.error} prefix="approve_experiment refused" />
        </form>
        <form onSubmit={(ev) => { ev.preventDefault(); reject.run(); }} aria-label={`Reject ${e.name}`}>
          <label for={`reject-${id}`}>Reason for rejecting</label>
          <textarea id={`reject-${id}`} rows={2} required value={reason} onInput={(ev) => setReason((ev.target as HTMLTextAreaElement).value)} />
          <button type="submit" class="danger" disabled={reject.busy}>{reject.busy ? "Rejecting…" : "Reject"}</button>
          <ErrorNote error={reject.error} prefix="reject_experiment refused" />
        </form>
      </div>
    </section>
  );
}
