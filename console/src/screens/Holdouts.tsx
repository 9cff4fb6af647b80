// Holdout cohorts: the list, creating and freezing one, retiring (admin), health, and the read-out (§10).
import { useState } from "preact/hooks";

import * as api from "../api";
import type { Session } from "../api";
import { Badge, Empty, ErrorNote, Field, KeyValues, Loading, Panel, ReasonAction, Select, TextInput } from "../components/ui";
import { errorsByField } from "../form";
import { count, day, interval, label, num, pct, pValue } from "../format";
import { ReadoutChart } from "../components/charts";
import { useAction, useAsync } from "../hooks";
import { href } from "../router";
import { may } from "../permissions";
import {
  METRICS, OFFER_TYPES, type HoldoutAnalysis, type HoldoutCohort, type HoldoutHealth, type Metric, type OfferType,
  type SpilloverAction, type SpilloverChannel,
} from "../types";

const CHANNELS: SpilloverChannel[] = ["referral", "gift", "shared_wallet"];

export function Holdouts({ session }: { session: Session }) {
  const cohorts = useAsync(() => api.listCohorts(), []);
  // Experiment names for the read-out's shipped experiments.
  const experiments = useAsync(() => api.listExperiments(), []);
  const names = Object.fromEntries((experiments.data ?? []).map((e) => [e.experimentId, e.name]));
  return (
    <>
      <div class="page-head">
        <h1>Holdouts</h1>
        <button type="button" class="ghost" onClick={cohorts.reload} disabled={cohorts.loading}>Refresh</button>
      </div>
      <p class="muted">A frozen holdout cohort never sees a treatment or a shipped offer of any experiment in its scope; its members are the long-run comparison.</p>
      {may.createCohort(session) ? <NewCohort onCreated={cohorts.reload} /> : null}
      <ErrorNote error={cohorts.error} prefix="Could not load the cohorts" />
      {!cohorts.data ? <Loading what="cohorts" /> : !cohorts.data.length ? <Empty>No holdout cohort yet.</Empty> : (
        cohorts.data.map((c) => <CohortPanel key={c.cohortId} session={session} cohort={c} reload={cohorts.reload} names={names} />)
      )}
    </>
  );
}

function scopeText(c: HoldoutCohort): string {
  const placements = c.scope?.placements ?? [];
  const types = c.scope?.offerTypes ?? [];
  if (!placements.length && !types.length) return "global (every experiment)";
  return [placements.length ? `placements ${placements.join(", ")}` : "", types.length ? `offer types ${types.map(label).join(", ")}` : ""].filter(Boolean).join("; ");
}

function NewCohort({ onCreated }: { onCreated: () => void }) {
  const [name, setName] = useState("");
  const [percentage, setPercentage] = useState("10");
  const [description, setDescription] = useState("");
  const [policy, setPolicy] = useState<Record<SpilloverChannel, SpilloverAction>>({ referral: "FLAG", gift: "BLOCK", shared_wallet: "BLOCK" });
  const [placements, setPlacements] = useState("");
  const [offerTypes, setOfferTypes] = useState<OfferType[]>([]);
  const [fields, setFields] = useState<api.FieldError[]>([]);
  const create = useAction(async () => {
    setFields([]);
    const scopePlacements = placements.split(/[\s,]+/).filter(Boolean);
    const pct = Number(percentage);
    try {
      await api.createHoldoutCohort({
        name: name.trim(), percentage: percentage.trim() !== "" && Number.isFinite(pct) ? pct : (percentage as unknown as number),
        description: description.trim(), spilloverPolicy: policy,
        // An omitted scope is global (API.md §10).
        ...(scopePlacements.length || offerTypes.length ? { scope: { ...(scopePlacements.length ? { placements: scopePlacements } : {}), ...(offerTypes.length ? { offerTypes } : {}) } } : {}),
      });
    } catch (err) {
      setFields((err as api.ApiError).fields);
      throw err;
    }
    setName("");
  }, onCreated);
  const errors = errorsByField(fields, ["name", "percentage", "description", "spilloverPolicy", "scope"]);
  return (
    <Panel title="New holdout cohort" id="new-cohort">
      <form onSubmit={(ev) => { ev.preventDefault(); create.run(); }} noValidate aria-label="New holdout cohort">
        <div class="cols">
          <Field label="Cohort name" name="cohort-name" errors={errors.get("name")}>{(p) => <TextInput {...p} value={name} onValue={setName} />}</Field>
          <Field label="Share of users held out (%)" name="cohort-percentage" errors={errors.get("percentage")} hint="Above 0, at most 50.">{(p) => <TextInput {...p} inputMode="decimal" value={percentage} onValue={setPercentage} />}</Field>
          <Field label="Description" name="cohort-description" errors={errors.get("description")}>{(p) => <TextInput {...p} value={description} onValue={setDescription} />}</Field>
        </div>
        <fieldset class="rowset">
          <legend>Spillover policy (a benefit passed to a holdout member)</legend>
          <div class="cols tight">
            {CHANNELS.map((ch) => (
              <Field key={ch} label={label(ch)} name={`policy-${ch}`} errors={errors.get("spilloverPolicy")?.filter((m) => m.startsWith(ch))}>
                {(p) => <Select<SpilloverAction> {...p} value={policy[ch]} onValue={(v) => setPolicy((x) => ({ ...x, [ch]: v }))} options={["BLOCK", "FLAG", "ALLOW"]} />}
              </Field>
            ))}
          </div>
        </fieldset>
        <fieldset class="rowset">
          <legend>Scope (blank: global)</legend>
          <div class="cols">
            <Field label="Placements (comma separated)" name="cohort-placements" errors={errors.get("scope")}>{(p) => <TextInput {...p} value={placements} onValue={setPlacements} />}</Field>
            <div class="field">
              <span class="label">Offer types</span>
              <div class="checks inline-checks">
                {OFFER_TYPES.map((t) => (
                  <span class="check" key={t}>
                    <input id={`scope-${t}`} type="checkbox" checked={offerTypes.includes(t)} onChange={(ev) => setOfferTypes((xs) => (ev.target as HTMLInputElement).checked ? [...xs, t] : xs.filter((x) => x !== t))} />
                    <label for={`scope-${t}`}>{label(t)}</label>
                  </span>
                ))}
              </div>
            </div>
          </div>
        </fieldset>
        <button type="submit" class="primary" disabled={create.busy}>{create.busy ? "Creating…" : "Create cohort"}</button>
        <span class="muted small"> A new cohort is a draft: freeze it to use it.</span>
        <ErrorNote error={create.error} prefix="create_holdout_cohort refused" />
      </form>
    </Panel>
  );
}

function Readout({ readout: r, names }: { readout: HoldoutAnalysis; names: Record<string, string> }) {
  return (
    <div class="readout" data-analysis={r.analysisId}>
      <h3>Holdout read-out: {r.metric}</h3>
      <div class="figures">
        <div data-figure="lift"><span class="muted">Lift of everything shipped</span><strong>{pct(r.liftPercent, 2, true)}</strong></div>
        <div data-figure="interval"><span class="muted">95 % interval</span><strong>{interval(r.confidenceInterval, 2)}</strong></div>
        <div><span class="muted">p-value</span><strong>{pValue(r.pValue)}</strong></div>
        <div><span class="muted">Users: held out / exposed outside</span><strong>{count(r.holdoutUsers)} / {count(r.comparisonUsers)}</strong></div>
        <div><span class="muted">Mean: held out / outside</span><strong>{num(r.holdoutMean, 2)} / {num(r.comparisonMean, 2)}</strong></div>
      </div>
      <ReadoutChart readout={r} names={names} />
      {r.shippedExperiments.length ? (
        <table class="grid compact" aria-label="Shipped experiments in scope">
          <thead><tr><th>Shipped experiment</th><th>Arm</th><th>Shipped</th><th>Measured lift (its own test)</th><th>± s.e.</th><th>Shrunk lift</th></tr></thead>
          <tbody>{r.shippedExperiments.map((x) => (
            <tr key={x.experimentId} data-experiment={x.experimentId}>
              <td><a href={href.experiment(x.experimentId)}>{names[x.experimentId] ?? x.experimentId}</a></td><td>{x.arm}</td><td>{day(x.shippedAt)}</td>
              <td>{pct(x.experimentLiftPercent, 2, true)}</td><td>{x.experimentLiftSePercent != null ? pct(x.experimentLiftSePercent, 2) : "—"}</td><td>{pct(x.shrunkLiftPercent, 2, true)}</td>
            </tr>
          ))}</tbody>
        </table>
      ) : <p class="muted">Nothing shipped in this scope yet.</p>}
      <p class="muted small">The lift compares the exposed users outside the holdout with the exposed holdout members: the cumulative effect of what shipped in the scope. A shipped winner's own estimate overstates its effect (the winner's curse); the shrunk lift pulls it toward 0 by empirical Bayes over every experiment the cohort covered. Method: {r.method}. Stored once as analysis {r.analysisId}.</p>
    </div>
  );
}

function CohortPanel({ session, cohort: c, reload, names }: { session: Session; cohort: HoldoutCohort; reload: () => void; names: Record<string, string> }) {
  const act = useAction((fn: () => Promise<unknown>) => fn(), reload);
  const [health, setHealth] = useState<HoldoutHealth | null>(null);
  const check = useAction(async () => setHealth(await api.getHoldoutHealth(c.cohortId)));
  const [metric, setMetric] = useState<Metric>("net_ltv");
  const [readout, setReadout] = useState<HoldoutAnalysis | null>(null);
  const analyze = useAction(async () => setReadout(await api.analyzeHoldout(c.cohortId, metric)));
  const policy = c.spilloverPolicy ?? {};
  return (
    <section class="panel" aria-labelledby={`cohort-${c.cohortId}`} data-cohort={c.cohortId}>
      <header class="panel-head">
        <h2 id={`cohort-${c.cohortId}`}>{c.name} <Badge value={c.status} /></h2>
        <div class="panel-actions">
          {may.createCohort(session) && c.status === "DRAFT" ? <button type="button" class="primary" disabled={act.busy} onClick={() => act.run(() => api.freezeHoldoutCohort(c.cohortId))}>Freeze {c.name}</button> : null}
          {may.retireCohort(session) && c.status === "FROZEN" ? <ReasonAction text="Retire" field="Reason for retiring it" tone="danger" busy={act.busy} onConfirm={(r) => act.run(() => api.retireHoldoutCohort(c.cohortId, r))} /> : null}
        </div>
      </header>
      <ErrorNote error={act.error} prefix="Refused" />
      <KeyValues rows={[
        ["Held out", pct(c.percentage, c.percentage < 10 ? 2 : 0)],
        ["Scope", scopeText(c)],
        ["Spillover", CHANNELS.map((ch) => `${label(ch)}: ${policy[ch] ?? "ALLOW"}`).join(" · ")],
        ["Created", `${day(c.createdAt)}${c.createdBy ? ` by ${c.createdBy}` : ""}`],
        ["Frozen", c.frozenAt ? day(c.frozenAt) : "not yet"],
        ["Salt", <code>{c.salt}</code>],
      ]} />
      {c.description ? <p class="muted">{c.description}</p> : null}
      {may.cohortHealth(session) && c.status !== "DRAFT" ? (
        <div class="cohort-tools cols">
          <div>
            <button type="button" disabled={check.busy} onClick={() => check.run()}>{check.busy ? "Checking…" : "Check health"}</button>
            <ErrorNote error={check.error} prefix="get_holdout_health refused" />
            {health ? (
              <div class="health" data-health={health.health}>
                <p><Badge value={health.health} /> {health.issues.length ? health.issues.join("; ") : "no issue"}</p>
                <KeyValues rows={[
                  ["Exposed users", health.exposedUsers != null ? <span data-testid="exposed-users">{count(health.exposedUsers)} ({count(health.exposedHoldoutUsers ?? null)} held out)</span> : "—"],
                  ["Assigned users", `${count(health.assignedUsers)} of ${count(health.evaluatedUsers ?? null)} evaluated`],
                  ["Contaminated", <span data-testid="contaminated">{count(health.contaminatedUsers)} ({pct(health.contaminationRate != null ? health.contaminationRate * 100 : null, 2)})</span>],
                  ["Share expected / observed", `${pct(health.expectedShare * 100, 2)} / ${pct(health.observedShare != null ? health.observedShare * 100 : null, 2)}`],
                  ["SRM p-value", pValue(health.srmPValue)],
                ]} />
              </div>
            ) : null}
          </div>
          <div>
            <form class="row" onSubmit={(ev) => { ev.preventDefault(); analyze.run(); }} aria-label={`Read-out of ${c.name}`}>
              <label for={`readout-${c.cohortId}`} class="inline">Read-out metric</label>
              <Select id={`readout-${c.cohortId}`} value={metric} onValue={setMetric} options={METRICS} />
              <button type="submit" disabled={analyze.busy}>{analyze.busy ? "Analysing…" : "Holdout read-out"}</button>
            </form>
            <ErrorNote error={analyze.error} prefix="analyze_holdout refused" />
          </div>
        </div>
      ) : null}
      {readout ? <Readout readout={readout} names={names} /> : null}
    </section>
  );
}
