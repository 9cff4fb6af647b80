// Create or edit an experiment (create_experiment / update_experiment) and its rollout plan
// (create_rollout_plan). The server validates; its INVALID_ARGUMENT paths appear beside the fields.
import { useEffect, useMemo, useState } from "preact/hooks";

import * as api from "../api";
import type { Session } from "../api";
import { RolloutPlanFields } from "../components/RolloutPlanFields";
import { Empty, ErrorNote, Field, FieldErrors, Loading, Panel, Select, TextArea, TextInput } from "../components/ui";
import {
  blankGuardrail, blankKpi, defaultPlan, definitionOf, emptyForm, errorsByField, experimentKeys, formOf, planErrors,
  planFormOf, planRequestOf, type ExperimentForm, type GuardrailRow, type KpiRow, type PlanForm,
} from "../form";
import { label } from "../format";
import { useAsync } from "../hooks";
import { may } from "../permissions";
import { go, href } from "../router";
import { METRICS, OFFER_TYPES, type HoldoutCohort, type KpiType, type Direction, type ViolationAction } from "../types";

/** A cohort's scope in a few words (API.md §10: empty = global). */
function scopeLabel(c: HoldoutCohort): string {
  const parts = [...(c.scope?.placements ?? []), ...(c.scope?.offerTypes ?? []).map(label)];
  return parts.length ? `scope ${parts.join(", ")}` : "global";
}

interface Loaded { form: ExperimentForm; plan: PlanForm; hasPlan: boolean; planEditable: boolean; status?: string; author?: string }

async function load(experimentId?: string): Promise<{ loaded: Loaded; cohorts: HoldoutCohort[] }> {
  const cohorts = await api.listCohorts();
  if (!experimentId) {
    const frozen = cohorts.find((c) => c.status === "FROZEN");
    return { cohorts, loaded: { form: { ...emptyForm(), holdoutCohortId: frozen?.cohortId ?? "" }, plan: defaultPlan(), hasPlan: false, planEditable: true } };
  }
  const [experiment, plan] = await Promise.all([api.getExperiment(experimentId), api.getRolloutPlan(experimentId)]);
  if (!experiment) throw new api.ApiError("NOT_FOUND", "No such experiment.");
  return {
    cohorts,
    loaded: {
      form: formOf(experiment), plan: plan ? planFormOf(plan) : defaultPlan(), hasPlan: Boolean(plan),
      planEditable: !plan || plan.status === "PLANNED", status: experiment.status, author: experiment.author,
    },
  };
}

export function ExperimentEditor({ session, experimentId }: { session: Session; experimentId?: string }) {
  const data = useAsync(() => load(experimentId), [experimentId]);
  if (data.error) return <ErrorNote error={data.error} prefix="Could not open the experiment" />;
  if (!data.data) return <Loading what="the form" />;
  if (!may.createExperiment(session)) return <Empty>Your role may not create or edit experiments.</Empty>;
  return <EditorForm key={experimentId ?? "new"} experimentId={experimentId} initial={data.data.loaded} cohorts={data.data.cohorts} />;
}

function EditorForm({ experimentId, initial, cohorts }: { experimentId?: string; initial: Loaded; cohorts: HoldoutCohort[] }) {
  const [form, setForm] = useState<ExperimentForm>(initial.form);
  const [plan, setPlan] = useState<PlanForm>(initial.plan);
  const [savedId, setSavedId] = useState<string | undefined>(experimentId);
  // What the server holds now, to send only real changes (an unchanged edit would still void approvals).
  const [savedDefinition, setSavedDefinition] = useState<string | null>(experimentId ? JSON.stringify(definitionOf(initial.form).definition) : null);
  const [savedPlan, setSavedPlan] = useState<string | null>(initial.hasPlan ? JSON.stringify(initial.plan) : null);
  const [fieldErrors, setFieldErrors] = useState<api.FieldError[]>([]);
  const [planFieldErrors, setPlanFieldErrors] = useState<api.FieldError[]>([]);
  const [error, setError] = useState<api.ApiError | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const set = <K extends keyof ExperimentForm>(key: K) => (value: ExperimentForm[K]) => setForm((f) => ({ ...f, [key]: value }));
  const errors = useMemo(() => errorsByField(fieldErrors, experimentKeys(form)), [fieldErrors, form]);
  const pErrors = useMemo(() => planErrors(planFieldErrors), [planFieldErrors]);
  const e = (key: string) => errors.get(key);
  const frozen = cohorts.filter((c) => c.status === "FROZEN");

  useEffect(() => {
    // Move the keyboard to the first field the server refused, so it is seen and fixed.
    if (!fieldErrors.length && !planFieldErrors.length) return;
    document.querySelector<HTMLElement>(".field.invalid input, .field.invalid textarea, .field.invalid select")?.focus();
  }, [fieldErrors, planFieldErrors]);

  async function submit(ev: Event) {
    ev.preventDefault();
    setBusy(true);
    setError(null);
    setNotice(null);
    setFieldErrors([]);
    setPlanFieldErrors([]);
    const { definition, local } = definitionOf(form);
    if (local.length) { setFieldErrors(local); setBusy(false); return; }
    let id = savedId;
    try {
      const encoded = JSON.stringify(definition);
      if (!id) {
        id = (await api.createExperiment(definition)).experimentId;
        setSavedId(id);
        setSavedDefinition(encoded);
      } else if (encoded !== savedDefinition) {
        await api.updateExperiment(id, definition);
        setSavedDefinition(encoded);
      }
    } catch (err) {
      const apiErr = err as api.ApiError;
      setFieldErrors(apiErr.fields);
      setError(apiErr);
      setBusy(false);
      return;
    }
    try {
      if (initial.planEditable && JSON.stringify(plan) !== savedPlan) {
        await api.createRolloutPlan(planRequestOf(id, plan));
        setSavedPlan(JSON.stringify(plan));
      }
    } catch (err) {
      const apiErr = err as api.ApiError;
      setPlanFieldErrors(apiErr.fields);
      setError(apiErr);
      setNotice(`The experiment is saved as a draft; the rollout plan was refused. Fix the plan and save again.`);
      setBusy(false);
      return;
    }
    setBusy(false);
    go(href.experiment(id));
  }

  const editingLive = initial.status && initial.status !== "DRAFT";
  return (
    <form class="editor" onSubmit={submit} noValidate aria-label={experimentId ? "Edit experiment" : "New experiment"}>
      <div class="page-head">
        <h1>{experimentId ? `Edit ${initial.form.name}` : "New experiment"}</h1>
        <a href={experimentId ? href.experiment(experimentId) : href.experiments()}>Cancel</a>
      </div>
      {editingLive ? <p class="warning" role="note">This experiment is {label(initial.status)}: saving an edit voids every approval and returns it to Draft.</p> : null}
      {notice ? <p class="warning" role="status">{notice}</p> : null}
      <ErrorNote error={error} prefix="The server refused it" />
      {fieldErrors.length ? <p class="error-summary">{fieldErrors.length === 1 ? "1 field needs a fix" : `${fieldErrors.length} fields need a fix`}: {fieldErrors.map((f) => f.path).join(", ")}.</p> : null}
      <FieldErrors id="form-errors" errors={errors.get("")} />

      <Panel title="What and why">
        <div class="cols">
          <Field label="Name" name="name" errors={e("name")}>{(p) => <TextInput {...p} value={form.name} onValue={set("name")} />}</Field>
          <Field label="Offer type" name="offerType" errors={e("offerType")}>{(p) => <Select {...p} value={form.offerType} onValue={set("offerType")} options={OFFER_TYPES.map((t) => [t, label(t)])} />}</Field>
        </div>
        <Field label="Description" name="description" errors={e("description")}>{(p) => <TextArea {...p} rows={2} value={form.description} onValue={set("description")} />}</Field>
        <Field label="Hypothesis" name="hypothesis.statement" errors={[...(e("hypothesis") ?? []), ...(e("hypothesis.statement") ?? [])]} hint="What you expect to happen, and why.">{(p) => <TextArea {...p} rows={2} value={form.statement} onValue={set("statement")} />}</Field>
        <div class="cols">
          <Field label="Expected impact" name="hypothesis.expectedImpact" errors={e("hypothesis.expectedImpact")}>{(p) => <TextInput {...p} value={form.expectedImpact} onValue={set("expectedImpact")} />}</Field>
        </div>
        <div class="cols">
          <Field label="Risks identified (one per line)" name="hypothesis.risksIdentified" errors={e("hypothesis.risksIdentified")}>{(p) => <TextArea {...p} value={form.risks} onValue={set("risks")} />}</Field>
          <Field label="Success criteria (one per line)" name="hypothesis.successCriteria" errors={e("hypothesis.successCriteria")}>{(p) => <TextArea {...p} value={form.successCriteria} onValue={set("successCriteria")} />}</Field>
        </div>
      </Panel>

      <Panel title="KPIs">
        <FieldErrors id="kpis-errors" errors={e("kpis")} />
        {form.kpis.map((k, i) => <KpiEditor key={i} index={i} row={k} errors={errors}
          onChange={(row) => setForm((f) => ({ ...f, kpis: f.kpis.map((x, j) => (j === i ? row : x)) }))}
          onRemove={() => setForm((f) => ({ ...f, kpis: f.kpis.filter((_, j) => j !== i) }))} />)}
        <button type="button" class="ghost" onClick={() => setForm((f) => ({ ...f, kpis: [...f.kpis, blankKpi()] }))}>Add KPI</button>
      </Panel>

      <Panel title="Guardrails">
        <FieldErrors id="guardrails-errors" errors={e("guardrails")} />
        {form.guardrails.map((g, i) => <GuardrailEditor key={i} index={i} row={g} errors={errors}
          onChange={(row) => setForm((f) => ({ ...f, guardrails: f.guardrails.map((x, j) => (j === i ? row : x)) }))}
          onRemove={() => setForm((f) => ({ ...f, guardrails: f.guardrails.filter((_, j) => j !== i) }))} />)}
        <button type="button" class="ghost" onClick={() => setForm((f) => ({ ...f, guardrails: [...f.guardrails, blankGuardrail()] }))}>Add guardrail</button>
      </Panel>

      <Panel title="Audience, arms and offer">
        <div class="cols">
          <Field label="Holdout cohort" name="holdoutCohortId" errors={e("holdoutCohortId")}
            hint={frozen.length ? "Only a frozen cohort passes the launch checklist." : undefined}>
            {(p) => (
              <select {...p} value={form.holdoutCohortId} onChange={(ev) => set("holdoutCohortId")((ev.target as HTMLSelectElement).value)}>
                <option value="">(choose a cohort)</option>
                {cohorts.map((c) => <option key={c.cohortId} value={c.cohortId}>{c.name} · {c.percentage} % · {label(c.status)} · {scopeLabel(c)}</option>)}
              </select>
            )}
          </Field>
          <Field label="Treatment share of enrolled users (%)" name="treatmentPercentage" errors={e("treatmentPercentage")}>{(p) => <TextInput {...p} inputMode="decimal" value={form.treatmentPercentage} onValue={set("treatmentPercentage")} />}</Field>
        </div>
        {!frozen.length ? <p class="warning">No frozen holdout cohort yet: <a href={href.holdouts()}>create and freeze one</a> first.</p> : null}
        <div class="cols">
          <Field label="Placement" name="placement" errors={e("placement")} hint="Where the offer is shown, e.g. onboarding_paywall; blank: default. The holdout must cover it.">{(p) => <TextInput {...p} value={form.placement} onValue={set("placement")} />}</Field>
          <Field label="Traffic of the placement (%)" name="trafficPercentage" errors={e("trafficPercentage")} hint="The share of the placement's users it may enroll; experiments running in one placement never share a user. Blank: 100.">{(p) => <TextInput {...p} inputMode="decimal" value={form.trafficPercentage} onValue={set("trafficPercentage")} />}</Field>
        </div>
        <div class="cols">
          <Field label="Treatment offer (JSON)" name="offerConfig" errors={e("offerConfig")}>{(p) => <TextArea {...p} class="mono" rows={4} value={form.offerConfig} onValue={set("offerConfig")} />}</Field>
          <Field label="Control offer, the status quo (JSON)" name="controlConfig" errors={e("controlConfig")}>{(p) => <TextArea {...p} class="mono" rows={4} value={form.controlConfig} onValue={set("controlConfig")} />}</Field>
        </div>
        <div class="cols">
          <Field label="Planned start" name="plannedStartDate" errors={e("plannedStartDate")}>{(p) => <TextInput {...p} type="date" value={form.plannedStartDate} onValue={set("plannedStartDate")} />}</Field>
          <Field label="Planned end" name="plannedEndDate" errors={e("plannedEndDate")}>{(p) => <TextInput {...p} type="date" value={form.plannedEndDate} onValue={set("plannedEndDate")} />}</Field>
        </div>
        <Field label="Approvers (emails, comma separated)" name="approvers" errors={e("approvers")} hint="Each must approve before the start; you cannot approve your own experiment.">{(p) => <TextInput {...p} value={form.approvers} onValue={set("approvers")} />}</Field>
      </Panel>

      <Panel title="Rollout plan">
        {initial.planEditable
          ? <RolloutPlanFields plan={plan} onChange={setPlan} errors={pErrors} />
          : <p class="muted">The rollout has started; its plan can no longer change.</p>}
      </Panel>

      <div class="row sticky-actions">
        <button type="submit" class="primary" disabled={busy}>{busy ? "Saving…" : savedId ? "Save changes" : "Create experiment"}</button>
        <span class="muted">Saved as a draft; submit it for approval from its page.</span>
      </div>
    </form>
  );
}

function KpiEditor({ index, row, errors, onChange, onRemove }: { index: number; row: KpiRow; errors: Map<string, string[]>; onChange: (r: KpiRow) => void; onRemove: () => void }) {
  const k = (name: string) => `kpis.${index}.${name}`;
  const upd = <K extends keyof KpiRow>(key: K) => (v: KpiRow[K]) => onChange({ ...row, [key]: v });
  return (
    <fieldset class="rowset">
      <legend>KPI {index + 1}</legend>
      <FieldErrors id={`kpi-${index}-errors`} errors={errors.get(`kpis.${index}`)} />
      <div class="cols tight">
        <Field label="Name" name={k("name")} errors={errors.get(k("name"))}>{(p) => <TextInput {...p} value={row.name} onValue={upd("name")} />}</Field>
        <Field label="Type" name={k("type")} errors={errors.get(k("type"))}>{(p) => <Select<KpiType> {...p} value={row.type} onValue={upd("type")} options={["PRIMARY", "SECONDARY", "GUARDRAIL"]} />}</Field>
        <Field label="Metric" name={k("metric")} errors={errors.get(k("metric"))}>{(p) => <Select {...p} value={row.metric} onValue={upd("metric")} options={METRICS} />}</Field>
        <Field label="Direction" name={k("direction")} errors={errors.get(k("direction"))}>{(p) => <Select<Direction> {...p} value={row.direction} onValue={upd("direction")} options={["INCREASE", "DECREASE", "MAINTAIN"]} />}</Field>
        <Field label="Baseline" name={k("baselineValue")} errors={errors.get(k("baselineValue"))}>{(p) => <TextInput {...p} inputMode="decimal" value={row.baselineValue} onValue={upd("baselineValue")} />}</Field>
        <Field label="Target" name={k("targetValue")} errors={errors.get(k("targetValue"))}>{(p) => <TextInput {...p} inputMode="decimal" value={row.targetValue} onValue={upd("targetValue")} />}</Field>
        <Field label="Threshold" name={k("threshold")} errors={errors.get(k("threshold"))}>{(p) => <TextInput {...p} inputMode="decimal" value={row.threshold} onValue={upd("threshold")} />}</Field>
      </div>
      <button type="button" class="ghost small" onClick={onRemove}>Remove KPI {index + 1}</button>
    </fieldset>
  );
}

function GuardrailEditor({ index, row, errors, onChange, onRemove }: { index: number; row: GuardrailRow; errors: Map<string, string[]>; onChange: (r: GuardrailRow) => void; onRemove: () => void }) {
  const k = (name: string) => `guardrails.${index}.${name}`;
  const upd = <K extends keyof GuardrailRow>(key: K) => (v: GuardrailRow[K]) => onChange({ ...row, [key]: v });
  return (
    <fieldset class="rowset">
      <legend>Guardrail {index + 1}</legend>
      <FieldErrors id={`guardrail-${index}-errors`} errors={errors.get(`guardrails.${index}`)} />
      <div class="cols tight">
        <Field label="KPI name" name={k("kpiName")} errors={errors.get(k("kpiName"))}>{(p) => <TextInput {...p} value={row.kpiName} onValue={upd("kpiName")} />}</Field>
        <Field label="Metric" name={k("metric")} errors={errors.get(k("metric"))}>{(p) => <Select {...p} value={row.metric} onValue={upd("metric")} options={METRICS} />}</Field>
        <Field label="Max threshold" name={k("maxThreshold")} errors={errors.get(k("maxThreshold"))}>{(p) => <TextInput {...p} inputMode="decimal" value={row.maxThreshold} onValue={upd("maxThreshold")} />}</Field>
        <Field label="Min threshold" name={k("minThreshold")} errors={errors.get(k("minThreshold"))}>{(p) => <TextInput {...p} inputMode="decimal" value={row.minThreshold} onValue={upd("minThreshold")} />}</Field>
        <Field label="On violation" name={k("violationAction")} errors={errors.get(k("violationAction"))}>{(p) => <Select<ViolationAction> {...p} value={row.violationAction} onValue={upd("violationAction")} options={["ALERT", "PAUSE", "KILL"]} />}</Field>
      </div>
      <button type="button" class="ghost small" onClick={onRemove}>Remove guardrail {index + 1}</button>
    </fieldset>
  );
}
