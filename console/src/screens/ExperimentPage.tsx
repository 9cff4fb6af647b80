// One experiment: launch checklist, live monitor, rollout and its controls, alerts, analyses, shipping,
// the definition and the timeline. Each control appears only for a role that may use it (permissions.ts).
import { useState } from "preact/hooks";

import * as api from "../api";
import type { Session } from "../api";
import { ExposureBars, GuardrailBars, IntervalChart, StageTrack } from "../components/charts";
import { Checklist, LaunchChecklist } from "../components/Checklist";
import { Approvals, Definition } from "../components/Definition";
import { RolloutPlanFields } from "../components/RolloutPlanFields";
import { Badge, Empty, ErrorNote, KeyValues, Loading, Panel, ReasonAction, Select } from "../components/ui";
import { defaultPlan, planErrors, planRequestOf, type PlanForm } from "../form";
import { count, guardValue, interval, label, num, pct, pValue, when, toDate } from "../format";
import { useAction, useAsync, useInterval } from "../hooks";
import { may } from "../permissions";
import { href } from "../router";
import {
  METRICS, type Alert, type Analysis, type ChecklistItem, type Experiment, type GuardrailState, type HoldoutCohort, type Metric,
  type MonitorResult, type RolloutPlan, type TimelineEvent,
} from "../types";

interface PageData {
  experiment: Experiment;
  plan: RolloutPlan | null;
  cohort: HoldoutCohort | null;
  /** The cohorts covering the run and the ship (§10), by id. */
  covering: Record<string, HoldoutCohort>;
  creationEvent: boolean | null;
  events: TimelineEvent[];
  rolloutEvents: TimelineEvent[];
  analyses: Analysis[];
  alerts: Alert[];
}

async function loadPage(id: string): Promise<PageData> {
  const experiment = await api.getExperiment(id);
  if (!experiment) throw new api.ApiError("NOT_FOUND", "No such experiment.");
  const coveringIds = Array.from(new Set([...(experiment.coveringCohortIds ?? []), ...(experiment.ship?.coveringCohortIds ?? [])]));
  const [plan, cohort, covering, creationEvent, events, rolloutEvents, analyses, alerts] = await Promise.all([
    api.getRolloutPlan(id),
    experiment.holdoutCohortId ? api.getCohort(experiment.holdoutCohortId) : Promise.resolve(null),
    Promise.all(coveringIds.map((c) => api.getCohort(c))),
    api.hasCreationEvent(id),
    api.listExperimentEvents(id),
    api.listRolloutEvents(id),
    api.listAnalyses(id),
    api.listAlerts(id),
  ]);
  const byTime = <T,>(key: (x: T) => unknown) => (a: T, b: T) => (toDate(key(a))?.getTime() ?? 0) - (toDate(key(b))?.getTime() ?? 0);
  return {
    experiment, plan, cohort, creationEvent,
    covering: Object.fromEntries(covering.filter((c): c is HoldoutCohort => c !== null).map((c) => [c.cohortId, c])),
    events: events.sort(byTime((e) => e.occurredAt)),
    rolloutEvents: rolloutEvents.sort(byTime((e) => e.occurredAt)),
    analyses: analyses.sort(byTime((a) => a.createdAt)),
    alerts: alerts.sort(byTime((a) => a.raisedAt ?? a.detectedAt)).reverse(),
  };
}

const STARTED = ["RUNNING", "PAUSED", "COMPLETED", "KILLED", "SHIP_PENDING_APPROVAL", "SHIPPED"];
const SHIP_STATES = ["COMPLETED", "SHIP_PENDING_APPROVAL", "SHIPPED"];

export function ExperimentPage({ session, id }: { session: Session; id: string }) {
  const page = useAsync(() => loadPage(id), [id]);
  const [serverChecklist, setServerChecklist] = useState<ChecklistItem[] | null>(null);
  if (page.error && !page.data) return <ErrorNote error={page.error} prefix="Could not open the experiment" />;
  if (!page.data) return <Loading what="the experiment" />;
  const d = page.data;
  const e = d.experiment;
  const started = STARTED.includes(e.status);
  return (
    <article class="experiment" data-status={e.status}>
      <div class="page-head">
        <div>
          <h1>{e.name} <Badge value={e.status} /></h1>
          <p class="muted">
            {label(e.offerType)} · placement <strong data-testid="placement">{e.placement ?? "default"}</strong> ({pct(e.trafficPercentage ?? 100, 0)} of its traffic) · treatment {pct(e.treatmentPercentage, 0)} of enrolled ·
            by {e.author} · {e.coverage != null ? `coverage ${pct(e.coverage, e.coverage < 10 ? 1 : 0)}` : "not rolled out"}
          </p>
          {e.statusReason ? <p class="muted">Last reason: {e.statusReason}</p> : null}
        </div>
        <button type="button" class="ghost" onClick={page.reload} disabled={page.loading}>{page.loading ? "Refreshing…" : "Refresh"}</button>
      </div>
      <Commands session={session} data={d} reload={page.reload} onChecklist={setServerChecklist} />
      {SHIP_STATES.includes(e.status) ? <Shipping session={session} data={d} reload={page.reload} /> : null}

      {!started ? (
        <Panel title="Launch checklist" id="checklist">
          {serverChecklist ? <Checklist items={serverChecklist} source="refusal" />
            : <LaunchChecklist experimentId={e.experimentId} version={e.version} />}
        </Panel>
      ) : null}

      {started ? <Monitor session={session} experiment={e} /> : null}
      <Rollout session={session} data={d} reload={page.reload} />
      {started || d.alerts.length ? <Alerts session={session} experiment={e} alerts={d.alerts} reload={page.reload} /> : null}
      {started ? <Analyses session={session} experiment={e} analyses={d.analyses} reload={page.reload} /> : null}

      <Panel title="Definition" id="definition"><Definition experiment={e} cohort={d.cohort} /></Panel>
      <Timeline events={[...d.events, ...d.rolloutEvents]} />
    </article>
  );
}

/** The lifecycle commands this person may give now. */
function Commands({ session, data, reload, onChecklist }: { session: Session; data: PageData; reload: () => void; onChecklist: (c: ChecklistItem[] | null) => void }) {
  const e = data.experiment;
  const id = e.experimentId;
  const act = useAction(async (fn: () => Promise<unknown>) => {
    try {
      await fn();
      onChecklist(null);
    } catch (err) {
      const checklist = (err as api.ApiError).checklist;
      if (checklist) onChecklist(checklist);
      throw err;
    }
  }, reload);
  const buttons = [
    may.edit(session, e) ? <a key="edit" class="button" href={href.edit(id)}>Edit</a> : null,
    may.submit(session, e) ? <button key="submit" type="button" class="primary" disabled={act.busy} onClick={() => act.run(() => api.submitForApproval(id))}>Submit for approval</button> : null,
    may.start(session, e) ? <button key="start" type="button" class="primary" disabled={act.busy} onClick={() => act.run(() => api.startExperiment(id))}>Start experiment</button> : null,
    may.approve(session, e) ? <ReasonAction key="approve" text={e.status === "SHIP_PENDING_APPROVAL" ? "Approve shipping" : "Approve"} field="Comment (optional)" required={false} busy={act.busy} onConfirm={(c) => act.run(() => api.approveExperiment(id, c || undefined))} /> : null,
    may.reject(session, e) ? <ReasonAction key="reject" text="Reject" field="Reason for rejecting" tone="danger" busy={act.busy} onConfirm={(r) => act.run(() => api.rejectExperiment(id, r))} /> : null,
    may.pause(session, e) ? <ReasonAction key="pause" text="Pause experiment" field="Reason for pausing" busy={act.busy} onConfirm={(r) => act.run(() => api.pauseExperiment(id, r))} /> : null,
    may.resume(session, e) ? <button key="resume" type="button" disabled={act.busy} onClick={() => act.run(() => api.resumeExperiment(id))}>Resume experiment</button> : null,
    may.complete(session, e) ? <button key="complete" type="button" disabled={act.busy} onClick={() => act.run(() => api.completeExperiment(id))}>Complete experiment</button> : null,
    may.kill(session, e) ? <ReasonAction key="kill" text="Kill experiment" field="Reason for killing it" tone="danger" busy={act.busy} onConfirm={(r) => act.run(() => api.killExperiment(id, r))} /> : null,
    may.audit(session) ? <a key="audit" class="button ghost" href={href.audit(id)}>Audit trail</a> : null,
  ].filter(Boolean);
  return (
    <div class="commands" role="toolbar" aria-label="Experiment commands">
      {buttons.length ? buttons : <span class="muted">Nothing for your role to do here now.</span>}
      <ErrorNote error={act.error} prefix="Refused" />
    </div>
  );
}

function Monitor({ session, experiment: e }: { session: Session; experiment: Experiment }) {
  const allowed = may.monitor(session);
  const monitor = useAsync(() => (allowed ? api.monitorExperiment(e.experimentId) : Promise.resolve(null)), [e.experimentId, e.version, allowed]);
  const live = e.status === "RUNNING" || e.status === "PAUSED";
  useInterval(monitor.reload, allowed && live ? 15_000 : null);
  if (!allowed) return <Panel title="Live monitor" id="monitor"><Empty>The live monitor is for experimenters and analysts.</Empty></Panel>;
  const m = monitor.data;
  return (
    <Panel title="Live monitor" id="monitor" actions={<button type="button" class="ghost" onClick={monitor.reload} disabled={monitor.loading}>{monitor.loading ? "Updating…" : "Update"}</button>}>
      <ErrorNote error={monitor.error} prefix="monitor_experiment refused" />
      {!m ? <Loading what="the monitor" /> : (
        <>
          <div class="monitor-head">
            <div><span class="muted">Health</span> <Badge value={m.health} /></div>
            <div><span class="muted">Stage</span> <strong>{m.stage != null ? pct(m.stage, m.stage < 10 ? 1 : 0) : "—"}</strong></div>
            <div><span class="muted">SRM p-value</span> <strong class={m.srmPValue != null && m.srmPValue < 0.001 ? "bad" : ""}>{pValue(m.srmPValue)}</strong></div>
            <div><span class="muted">Exposures</span> <strong>{count(m.exposures.CONTROL + m.exposures.TREATMENT + m.exposures.HOLDOUT)}</strong></div>
          </div>
          {m.issues.length ? <ul class="issues">{m.issues.map((i) => <li key={i}>{i}</li>)}</ul> : <p class="ok">No issues.</p>}
          <div class="cols">
            <div>
              <h3>Exposures per arm</h3>
              <ExposureBars exposures={m.exposures} treatmentPercentage={e.treatmentPercentage} />
            </div>
            <div>
              <h3>Guardrails against thresholds</h3>
              {m.guardrails.length ? <GuardrailBars guardrails={m.guardrails} /> : <Empty>No guardrail figures yet (no metric data).</Empty>}
            </div>
          </div>
          {m.guardrails.length ? (
            <table class="grid compact" aria-label="Guardrails">
              <thead><tr><th>Guardrail</th><th>Kind</th><th>Metric</th><th>Observed</th><th>Always-valid bound</th><th>Limit</th><th>Action</th><th>n (C / T)</th><th>State</th></tr></thead>
              <tbody>
                {m.guardrails.map((g, i) => (
                  <tr key={i} data-guardrail={g.kpiName} data-kind={g.type ?? "absolute"}>
                    <td>{g.kpiName}</td><td>{guardrailKind(g)}</td><td>{g.metric}</td><td>{guardValue(g, g.observed)}</td><td>{guardValue(g, g.confidenceBound ?? null)}</td>
                    <td>{g.direction === "min" ? "≥ " : "≤ "}{guardValue(g, g.threshold)}</td><td>{g.action}</td>
                    <td>{g.nControl != null ? `${count(g.nControl)} / ${count(g.nTreatment ?? null)}` : count(g.nTreatment ?? null)}</td>
                    <td>{g.breached ? <Badge value="BREACHED" tone="red" /> : g.pointBeyondThreshold ? <Badge value="TRENDING" tone="amber" /> : g.observed == null ? <Badge value="NO_DATA" tone="grey" /> : <Badge value="WITHIN" tone="green" />}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
          {m.guardrails.length ? <p class="muted small">Each limit is watched by an always-valid sequential test (α {m.guardrails[0].alpha ?? 0.05}): the bound may be looked at any time without inflating false alarms; a breach is declared only when the bound is beyond the limit. Relative limits and GUARDRAIL KPIs compare TREATMENT with CONTROL.</p> : null}
          {m.keptUsers ? <p class="muted small">Users kept after exclusions: CONTROL {count(m.keptUsers.CONTROL)}, TREATMENT {count(m.keptUsers.TREATMENT)}{exclusionText(m.exclusions)}.</p> : null}
        </>
      )}
    </Panel>
  );
}

/** "12.5 h at 20 %". A stage entered by a scheduled tick ahead of this clock (a replay driving the schedule
 *  through days, API.md §6) has a negative age here: said so rather than shown as negative hours. */
function stageAge(hours: number | null | undefined, stage: number | null | undefined): string {
  if (hours != null && hours < 0) return `at ${pct(stage ?? null, 0)}, entered at a scheduled time ${num(-hours, 1)} h ahead of now`;
  return `${num(hours ?? null, 1)} h at ${pct(stage ?? null, 0)}`;
}

function guardrailKind(g: GuardrailState): string {
  if (g.type === "relative") return "relative to control";
  if (g.type === "kpi") return "guardrail KPI";
  return "absolute";
}

function exclusionText(exclusions: MonitorResult["exclusions"]): string {
  if (!exclusions) return "";
  const totals: Record<string, number> = {};
  for (const byReason of Object.values(exclusions)) for (const [reason, n] of Object.entries(byReason ?? {})) totals[reason] = (totals[reason] ?? 0) + n;
  const shown = Object.entries(totals).filter(([, n]) => n > 0);
  return shown.length ? `; excluded: ${shown.map(([r, n]) => `${label(r).toLowerCase()} ${count(n)}`).join(", ")}` : "";
}

function Rollout({ session, data, reload }: { session: Session; data: PageData; reload: () => void }) {
  const { experiment: e, plan } = data;
  const id = e.experimentId;
  const active = plan && (plan.status === "ACTIVE" || plan.status === "PAUSED");
  const canCheck = may.monitor(session) && active;
  // Re-asked whenever the plan or the experiment changes (an acknowledged alert is a new experiment version).
  const progress = useAsync(() => (canCheck ? api.checkStageProgress(id) : Promise.resolve(null)), [id, plan?.version, e.version, canCheck]);
  const act = useAction((fn: () => Promise<unknown>) => fn(), () => { reload(); progress.reload(); });
  const [form, setForm] = useState<PlanForm>(defaultPlan());
  const [planFieldErrors, setPlanFieldErrors] = useState<api.FieldError[]>([]);
  const save = useAction(async () => {
    setPlanFieldErrors([]);
    try { await api.createRolloutPlan(planRequestOf(id, form)); } catch (err) { setPlanFieldErrors((err as api.ApiError).fields); throw err; }
  }, reload);
  const p = progress.data;
  return (
    <Panel title="Rollout" id="rollout">
      {plan ? (
        <>
          <KeyValues rows={[
            ["Plan", <><Badge value={plan.status} /> {plan.statusReason ? <span class="muted">{plan.statusReason}</span> : null}</>],
            ["Stages", plan.stages.map((s) => `${s.percentage} %`).join(" → ")],
            ["Options", [plan.autoProgress ? "auto-progress" : "manual progress", plan.pauseOnViolation ? "pause on violation" : null, plan.rollbackOnFailure ? "roll back on failure" : null].filter(Boolean).join(", ")],
            ["At this stage since", when(plan.stageEnteredAt)],
          ]} />
          <StageTrack stages={plan.stages} current={plan.currentStageIndex} started={plan.status !== "PLANNED"} />
        </>
      ) : <Empty>No rollout plan configured yet: the experiment cannot start without one.</Empty>}

      {plan && may.configurePlan(session, e, plan) || (!plan && may.configurePlan(session, e, null)) ? (
        <details class="plan-editor" open={!plan}>
          <summary>{plan ? "Replace the rollout plan" : "Configure the rollout plan"}</summary>
          <form onSubmit={(ev) => { ev.preventDefault(); save.run(); }} noValidate aria-label="Rollout plan">
            <RolloutPlanFields plan={form} onChange={setForm} errors={planErrors(planFieldErrors)} />
            <button type="submit" class="primary" disabled={save.busy}>{save.busy ? "Saving…" : "Save rollout plan"}</button>
            <ErrorNote error={save.error} prefix="create_rollout_plan refused" />
          </form>
        </details>
      ) : null}

      {canCheck ? (
        <div class="stage-check">
          <h3>Can the rollout progress?</h3>
          <ErrorNote error={progress.error} prefix="check_stage_progress refused" />
          {p ? (
            <>
              <p>{p.ready ? <strong class="ok">Ready for the next stage ({pct(p.nextStage ?? null, 0)}).</strong> : <strong class="warn">Not yet.</strong>} <span class="muted">{stageAge(p.hoursAtStage, p.stage)}</span></p>
              <div class="cols">
                <div><h4>Blocking</h4>{p.blocking.length ? <ul class="bad-list">{p.blocking.map((b) => <li key={b}>{b}</li>)}</ul> : <p class="muted">nothing</p>}</div>
                <div><h4>Met</h4>{p.met.length ? <ul class="ok-list">{p.met.map((b) => <li key={b}>{b}</li>)}</ul> : <p class="muted">nothing yet</p>}</div>
              </div>
            </>
          ) : !progress.error ? <Loading what="the stage requirements" /> : null}
        </div>
      ) : null}

      <div class="commands" role="toolbar" aria-label="Rollout controls">
        {may.progressRollout(session, e, plan) ? (
          <button type="button" class="primary" disabled={act.busy || p?.ready === false} aria-describedby={p?.ready === false ? "progress-blocked" : undefined}
            onClick={() => act.run(() => api.progressRollout(id))}>Progress to next stage</button>
        ) : null}
        {may.progressRollout(session, e, plan) && p?.ready === false ? <span id="progress-blocked" class="muted small">Blocked until the stage meets its requirements.</span> : null}
        {may.resumeRollout(session, e, plan) ? <button type="button" disabled={act.busy} onClick={() => act.run(() => api.startRollout(id))}>Resume rollout</button> : null}
        {may.pauseRollout(session, e, plan) ? <ReasonAction text="Pause rollout" field="Reason for pausing the rollout" busy={act.busy} onConfirm={(r) => act.run(() => api.pauseRollout(id, r))} /> : null}
        {may.rollbackRollout(session, e, plan) ? <ReasonAction text="Roll back a stage" field="Reason for rolling back" tone="danger" busy={act.busy} onConfirm={(r) => act.run(() => api.rollbackRollout(id, r))} /> : null}
        {may.abortRollout(session, e, plan) ? <ReasonAction text="Abort rollout" field="Reason for aborting (kills the experiment)" tone="danger" busy={act.busy} onConfirm={(r) => act.run(() => api.abortRollout(id, r))} /> : null}
        <ErrorNote error={act.error} prefix="Refused" />
      </div>
    </Panel>
  );
}

function Alerts({ session, experiment: e, alerts, reload }: { session: Session; experiment: Experiment; alerts: Alert[]; reload: () => void }) {
  const ack = useAction((alertId: string, comment: string) => api.acknowledgeAlert(e.experimentId, alertId, comment), reload);
  return (
    <Panel title={`Alerts (${alerts.filter((a) => !a.acknowledged).length} open)`} id="alerts">
      {!alerts.length ? <Empty>No alerts.</Empty> : (
        <table class="grid compact" aria-label="Alerts">
          <thead><tr><th>Raised</th><th>Type</th><th>Severity</th><th>What</th><th>State</th></tr></thead>
          <tbody>
            {alerts.map((a) => (
              <tr key={a.alertId} data-alert={a.alertId}>
                <td>{when(a.raisedAt ?? a.detectedAt)}</td>
                <td>{label(a.type)}</td>
                <td><Badge value={a.severity} tone={a.severity === "CRITICAL" ? "red" : "amber"} /></td>
                <td>{a.reason ?? (a.problems ?? []).join("; ")}{a.actionTaken && a.actionTaken !== "NONE" ? <div class="muted small">action: {a.actionTaken}</div> : null}</td>
                <td>
                  {a.acknowledged ? (
                    <span data-acknowledged>Acknowledged{a.acknowledgedBy ? ` by ${a.acknowledgedBy}` : ""}{a.acknowledgedAt ? `, ${when(a.acknowledgedAt)}` : ""}
                      {a.acknowledgementComment ? <div class="muted small">“{a.acknowledgementComment}”</div> : null}</span>
                  )
                    : may.acknowledgeAlert(session, e)
                      ? <ReasonAction text="Acknowledge" field="What was done about it" busy={ack.busy} onConfirm={(c) => ack.run(a.alertId, c)} />
                      : <Badge value="OPEN" tone="red" />}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <ErrorNote error={ack.error} prefix="acknowledge_alert refused" />
    </Panel>
  );
}

function Analyses({ session, experiment: e, analyses, reload }: { session: Session; experiment: Experiment; analyses: Analysis[]; reload: () => void }) {
  const primary = e.kpis?.find((k) => k.type === "PRIMARY")?.metric ?? "net_ltv";
  const [metric, setMetric] = useState<Metric>(primary);
  const [latest, setLatest] = useState<Analysis | null>(null);
  const run = useAction(async () => setLatest(await api.analyzeExperiment(e.experimentId, metric)), reload);
  const all = latest && !analyses.some((a) => a.analysisId === latest.analysisId) ? [...analyses, latest] : analyses;
  const newest = all[all.length - 1];
  return (
    <Panel title="Analyses" id="analyses">
      {may.analyze(session) ? (
        <form class="row" onSubmit={(ev) => { ev.preventDefault(); run.run(); }} aria-label="Run an analysis">
          <label for="analysis-metric" class="inline">Metric</label>
          <Select id="analysis-metric" value={metric} onValue={setMetric} options={METRICS} />
          <button type="submit" class="primary" disabled={run.busy}>{run.busy ? "Analysing…" : "Run analysis"}</button>
          <span class="muted small">Each run is stored once and never changed.</span>
        </form>
      ) : null}
      <ErrorNote error={run.error} prefix="analyze_experiment refused" />
      {!all.length ? <Empty>No analysis yet.</Empty> : (
        <>
          {newest ? <AnalysisCard analysis={newest} /> : null}
          <h3>Every analysis</h3>
          <IntervalChart analyses={all} />
          <table class="grid compact" aria-label="Analyses">
            <thead><tr><th>When</th><th>Metric</th><th>Raw</th><th>Corrected</th><th>Interval (fixed horizon)</th><th>p</th><th>Always-valid interval</th><th>p (always valid)</th><th>n (C / T)</th><th>Quality</th><th>Recommendation</th></tr></thead>
            <tbody>
              {[...all].reverse().map((a) => (
                <tr key={a.analysisId} data-analysis={a.analysisId}>
                  <td>{when(a.createdAt)}</td><td>{a.metric}</td><td>{pct(a.rawPercentChange, 2, true)}</td><td>{pct(a.correctedPercentChange, 2, true)}</td>
                  <td>{interval(a.confidenceInterval, 2)}</td><td>{pValue(a.pValue)}</td>
                  <td>{interval(a.sequential?.confidenceInterval ?? null, 2)}</td><td>{pValue(a.sequential?.pValue ?? null)}</td>
                  <td>{count(a.sampleSizes?.CONTROL)} / {count(a.sampleSizes?.TREATMENT)}</td>
                  <td><Badge value={a.dataQuality} /></td><td>{label(a.recommendation)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </Panel>
  );
}

function AnalysisCard({ analysis: a }: { analysis: Analysis }) {
  return (
    <div class="analysis" data-analysis-card={a.analysisId}>
      <h3>Latest: {a.metric} <Badge value={a.dataQuality} /></h3>
      <div class="figures">
        <div><span class="muted">Raw change</span><strong>{pct(a.rawPercentChange, 2, true)}</strong></div>
        <div><span class="muted">Corrected change</span><strong>{pct(a.correctedPercentChange, 2, true)}</strong></div>
        <div data-figure="fixed-interval"><span class="muted">Interval (fixed horizon)</span><strong>{interval(a.confidenceInterval, 2)}</strong></div>
        <div><span class="muted">p-value</span><strong>{pValue(a.pValue)}</strong></div>
        <div data-figure="always-valid-interval"><span class="muted">Always-valid interval</span><strong>{interval(a.sequential?.confidenceInterval ?? null, 2)}</strong></div>
        <div><span class="muted">p (always valid)</span><strong>{pValue(a.sequential?.pValue ?? null)}</strong></div>
        <div><span class="muted">SRM p-value</span><strong>{pValue(a.srmPValue)}</strong></div>
      </div>
      <p><strong>Recommendation: {label(a.recommendation)}</strong>{a.recommendationReason ? <span class="muted"> — {a.recommendationReason}</span> : null}</p>
      {a.dataQualityReasons?.length ? <p class="muted">Data quality: {a.dataQualityReasons.join("; ")}</p> : null}
      <p class="muted small">Method: {a.method}. The fixed-horizon interval holds for one look at the planned end; the always-valid one stays honest however often the analysis is repeated, and is wider for it.</p>
      <h4>Bias adjustments</h4>
      {a.biasAdjustments?.length ? (
        <table class="grid compact" aria-label="Bias adjustments">
          <thead><tr><th>Adjustment</th><th>Severity</th><th>Users</th><th>Control</th><th>Treatment</th></tr></thead>
          <tbody>
            {a.biasAdjustments.map((b) => (
              <tr key={b.type}><td>{label(b.type)}</td><td>{label(b.severity)}</td><td>{count(b.affectedUserCount)}</td><td>{count(b.byArm?.CONTROL ?? null)}</td><td>{count(b.byArm?.TREATMENT ?? null)}</td></tr>
            ))}
          </tbody>
        </table>
      ) : <p class="muted">None needed.</p>}
    </div>
  );
}

function Shipping({ session, data, reload }: { session: Session; data: PageData; reload: () => void }) {
  const e = data.experiment;
  const ship = e.ship ?? null;
  const [arm, setArm] = useState<"TREATMENT" | "CONTROL">("TREATMENT");
  const act = useAction((fn: () => Promise<unknown>) => fn(), reload);
  const placement = e.placement ?? "default";
  const covering = (ship?.coveringCohortIds ?? []).map((c) => data.covering[c]).filter(Boolean);
  const latest = data.analyses[data.analyses.length - 1];
  // A COMPLETED experiment's ship record is history: rejected, or unshipped.
  const past = e.status === "COMPLETED" && ship ? (ship.unshippedAt ? "UNSHIPPED" : ship.rejectedBy ? "REJECTED" : null) : null;
  const state = e.status === "SHIPPED" ? "SHIPPED" : e.status === "SHIP_PENDING_APPROVAL" ? "PENDING" : past ?? "NOT_SHIPPED";
  return (
    <Panel title="Shipping" id="shipping">
      <div data-ship-state={state}>
        {state === "SHIPPED" && ship ? (
          <p class="shipped"><Badge value="SHIPPED" /> <strong>{ship.arm}</strong> is the offer of placement <strong>{placement}</strong> for everyone outside the covering holdouts since {when(ship.shippedAt)}; holdout members keep the status quo.</p>
        ) : null}
        {state === "PENDING" && ship ? <p class="warn">Shipping <strong>{ship.arm}</strong> waits for the approvers (four eyes again).</p> : null}
        {state === "REJECTED" && ship ? <p class="muted">The ship of {ship.arm} was rejected by {ship.rejectedBy}: “{ship.rejectionReason}”.</p> : null}
        {state === "UNSHIPPED" && ship ? <p class="muted">{ship.arm} was shipped {when(ship.shippedAt)} and unshipped {when(ship.unshippedAt)} by {ship.unshippedBy}: “{ship.unshipReason}”. Everyone is back on the status quo.</p> : null}
        {state === "NOT_SHIPPED" ? <p class="muted">Completed and not shipped: the placement's users keep the status quo.{!may.ship(session, e) ? " Its author or an admin may propose shipping an arm." : ""}</p> : null}
      </div>
      {ship && state !== "NOT_SHIPPED" ? (
        <>
          <KeyValues rows={[
            ["Arm", <><strong data-testid="ship-arm">{ship.arm}</strong> <code>{JSON.stringify((ship.arm === "TREATMENT" ? e.offerConfig : e.controlConfig) ?? {})}</code></>],
            ["Reason", ship.reason],
            ["Requested", `${when(ship.requestedAt)} by ${ship.requestedBy}`],
            ["Covering holdouts", state === "PENDING" ? <span class="muted">recorded by the last approval</span> : covering.length
              ? <ul class="plain" data-testid="ship-covering">{covering.map((c) => <li key={c.cohortId}>{c.name} · {pct(c.percentage, 0)} held out <Badge value={c.status} /></li>)}</ul>
              : <span class="muted">none: every user of the placement gets it</span>],
          ]} />
          <h3>Ship approvals</h3>
          <Approvals experiment={e} book={ship.approvals ?? {}} label="Ship approvals" />
        </>
      ) : null}
      {may.ship(session, e) ? (
        <form class="ship-form" onSubmit={(ev) => ev.preventDefault()} aria-label="Propose shipping">
          {latest ? <p class="muted small">Latest analysis: {latest.metric} corrected {pct(latest.correctedPercentChange, 2, true)} {interval(latest.confidenceInterval, 2)}, always valid {interval(latest.sequential?.confidenceInterval ?? null, 2)} · {label(latest.recommendation)}.</p> : <p class="warning">No analysis recorded: run one before proposing a ship.</p>}
          <div class="commands">
            <label for="ship-arm" class="inline">Arm to ship</label>
            <Select id="ship-arm" value={arm} onValue={setArm} options={[["TREATMENT", `TREATMENT ${JSON.stringify(e.offerConfig ?? {})}`], ["CONTROL", `CONTROL ${JSON.stringify(e.controlConfig ?? {})}`]]} />
            <ReasonAction text="Propose shipping" field="Why this arm" busy={act.busy} onConfirm={(r) => act.run(() => api.shipExperiment(e.experimentId, arm, r))} />
          </div>
        </form>
      ) : null}
      {may.unship(session, e) ? <div class="commands"><ReasonAction text="Unship" field="Reason for unshipping" tone="danger" busy={act.busy} onConfirm={(r) => act.run(() => api.unshipExperiment(e.experimentId, r))} /></div> : null}
      <ErrorNote error={act.error} prefix="Refused" />
    </Panel>
  );
}

function Timeline({ events }: { events: TimelineEvent[] }) {
  const sorted = [...events].sort((a, b) => (toDate(a.occurredAt)?.getTime() ?? 0) - (toDate(b.occurredAt)?.getTime() ?? 0));
  return (
    <Panel title="Stage and rollout timeline" id="timeline">
      {!sorted.length ? <Empty>Nothing recorded yet.</Empty> : (
        <ol class="timeline">
          {sorted.map((ev) => (
            <li key={ev.id}>
              <time>{when(ev.occurredAt)}</time>
              <strong>{label(ev.eventType)}</strong>
              {ev.fromStatus && ev.toStatus && ev.fromStatus !== ev.toStatus ? <span class="muted"> {label(ev.fromStatus)} → {label(ev.toStatus)}</span> : null}
              {typeof ev.payload?.coverage === "number" ? <span class="muted"> · coverage {pct(ev.payload.coverage as number, 0)}</span> : null}
              {typeof ev.payload?.reason === "string" ? <span class="muted"> · {ev.payload.reason as string}</span> : null}
              {typeof ev.payload?.comment === "string" && ev.payload.comment ? <span class="muted"> · “{ev.payload.comment as string}”</span> : null}
              {ev.actor ? <span class="actor"> {ev.actor}</span> : null}
            </li>
          ))}
        </ol>
      )}
    </Panel>
  );
}
