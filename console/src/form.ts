// The experiment form's model: what the inputs hold (strings, as typed), how it becomes a
// create_experiment / update_experiment payload and a create_rollout_plan request, and where the
// server's INVALID_ARGUMENT field paths (API.md §9, `details.fields[].path`) are shown.
// The console does not re-validate what the server validates: a number that does not parse is sent as
// typed, so the server's own message appears beside the field. Only what cannot be sent at all (JSON
// text that does not parse) is reported here. Pure: no Firebase, no DOM.

import type {
  CreateRolloutPlanRequest, Direction, Experiment, ExperimentDefinition, Guardrail, Kpi, KpiType, Metric,
  OfferType, RolloutPlan, ViolationAction,
} from "./types";
import type { FieldError } from "./api";

export interface KpiRow { name: string; type: KpiType; metric: Metric; baselineValue: string; targetValue: string; threshold: string; direction: Direction }
export interface GuardrailRow { kpiName: string; metric: Metric; maxThreshold: string; minThreshold: string; violationAction: ViolationAction }

export interface ExperimentForm {
  name: string;
  description: string;
  statement: string;
  expectedImpact: string;
  risks: string;             // one per line
  successCriteria: string;   // one per line
  kpis: KpiRow[];
  guardrails: GuardrailRow[];
  holdoutCohortId: string;
  treatmentPercentage: string;
  offerType: OfferType;
  offerConfig: string;       // JSON text
  controlConfig: string;     // JSON text
  plannedStartDate: string;  // yyyy-mm-dd
  plannedEndDate: string;
  approvers: string;         // comma or newline separated
  placement: string;         // §10; blank = "default"
  trafficPercentage: string; // §10; blank = 100
}

export interface PlanForm {
  stages: string;            // "1, 5, 10, 25, 50"
  minHoursAtStage: string;
  minExposuresPerArm: string;
  autoProgress: boolean;
  pauseOnViolation: boolean;
  rollbackOnFailure: boolean;
}

/** API.md §10: an experiment without a placement is in "default". */
export const DEFAULT_PLACEMENT = "default";

const isoDay = (d: Date) => d.toISOString().slice(0, 10);

export function blankKpi(type: KpiType = "SECONDARY"): KpiRow {
  return { name: "", type, metric: "net_ltv", baselineValue: "", targetValue: "", threshold: "", direction: "INCREASE" };
}

export function blankGuardrail(): GuardrailRow {
  return { kpiName: "", metric: "refund_rate", maxThreshold: "", minThreshold: "", violationAction: "PAUSE" };
}

export function emptyForm(now = new Date()): ExperimentForm {
  const end = new Date(now.getTime() + 30 * 86_400_000);
  return {
    name: "", description: "", statement: "", expectedImpact: "", risks: "", successCriteria: "",
    kpis: [{ ...blankKpi("PRIMARY") }], guardrails: [blankGuardrail()],
    holdoutCohortId: "", treatmentPercentage: "50", offerType: "PRICE_CHANGE",
    offerConfig: "{\n  \"price\": 12.99\n}", controlConfig: "{\n  \"price\": 9.99\n}",
    plannedStartDate: isoDay(now), plannedEndDate: isoDay(end), approvers: "", placement: "", trafficPercentage: "",
  };
}

export function defaultPlan(): PlanForm {
  return { stages: "1, 5, 10, 25, 50", minHoursAtStage: "24", minExposuresPerArm: "100", autoProgress: false, pauseOnViolation: true, rollbackOnFailure: true };
}

const str = (v: unknown) => (v == null ? "" : String(v));
const dayOf = (v: unknown) => {
  const s = typeof v === "string" ? v : (v as { toDate?: () => Date })?.toDate?.()?.toISOString() ?? "";
  return s.slice(0, 10);
};

/** The form of an existing experiment (edit). */
export function formOf(e: Experiment): ExperimentForm {
  return {
    name: e.name, description: e.description ?? "", statement: e.hypothesis?.statement ?? "",
    expectedImpact: e.hypothesis?.expectedImpact ?? "", risks: (e.hypothesis?.risksIdentified ?? []).join("\n"),
    successCriteria: (e.hypothesis?.successCriteria ?? []).join("\n"),
    kpis: (e.kpis ?? []).map((k) => ({ name: k.name, type: k.type, metric: k.metric, baselineValue: str(k.baselineValue), targetValue: str(k.targetValue), threshold: str(k.threshold), direction: k.direction })),
    guardrails: (e.guardrails ?? []).map((g) => ({ kpiName: g.kpiName, metric: g.metric, maxThreshold: str(g.maxThreshold), minThreshold: str(g.minThreshold), violationAction: g.violationAction })),
    holdoutCohortId: e.holdoutCohortId, treatmentPercentage: str(e.treatmentPercentage), offerType: e.offerType,
    offerConfig: JSON.stringify(e.offerConfig ?? {}, null, 2), controlConfig: JSON.stringify(e.controlConfig ?? {}, null, 2),
    plannedStartDate: dayOf(e.plannedStartDate), plannedEndDate: dayOf(e.plannedEndDate),
    approvers: (e.approvers ?? []).join(", "),
    placement: e.placement && e.placement !== DEFAULT_PLACEMENT ? e.placement : "",
    trafficPercentage: e.trafficPercentage != null && e.trafficPercentage !== 100 ? str(e.trafficPercentage) : "",
  };
}

export function planFormOf(p: RolloutPlan): PlanForm {
  const first = p.stages[0] ?? { percentage: 0 };
  return {
    stages: p.stages.map((s) => s.percentage).join(", "), minHoursAtStage: str(first.minHoursAtStage ?? 24),
    minExposuresPerArm: str(first.minExposuresPerArm ?? 100), autoProgress: p.autoProgress,
    pauseOnViolation: p.pauseOnViolation, rollbackOnFailure: p.rollbackOnFailure,
  };
}

/** A number as typed: a number when it parses, else the text itself (the server says what is wrong). */
function numeric(text: string): number | string {
  const t = text.trim();
  const n = Number(t);
  return t !== "" && Number.isFinite(n) ? n : t;
}

function optionalNumber(text: string): number | string | undefined {
  return text.trim() === "" ? undefined : numeric(text);
}

const lines = (text: string) => text.split("\n").map((s) => s.trim()).filter(Boolean);

function json(text: string, path: string, local: FieldError[]): Record<string, unknown> {
  try {
    const value = JSON.parse(text.trim() || "{}");
    if (value && typeof value === "object" && !Array.isArray(value)) return value;
    local.push({ path, message: "must be a JSON object, e.g. {\"price\": 12.99}" });
  } catch (err) {
    local.push({ path, message: `not valid JSON: ${(err as Error).message}` });
  }
  return {};
}

function clean<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** The payload, and the errors of what could not be encoded at all (invalid JSON text). */
export function definitionOf(f: ExperimentForm): { definition: ExperimentDefinition; local: FieldError[] } {
  const local: FieldError[] = [];
  const definition = clean({
    name: f.name.trim(),
    description: f.description.trim(),
    hypothesis: { statement: f.statement.trim(), expectedImpact: f.expectedImpact.trim(), risksIdentified: lines(f.risks), successCriteria: lines(f.successCriteria) },
    kpis: f.kpis.map((k) => clean({
      name: k.name.trim(), type: k.type, metric: k.metric, direction: k.direction,
      baselineValue: optionalNumber(k.baselineValue), targetValue: optionalNumber(k.targetValue), threshold: optionalNumber(k.threshold),
    })) as unknown as Kpi[],
    guardrails: f.guardrails.map((g) => clean({
      kpiName: g.kpiName.trim(), metric: g.metric, violationAction: g.violationAction,
      maxThreshold: optionalNumber(g.maxThreshold), minThreshold: optionalNumber(g.minThreshold),
    })) as unknown as Guardrail[],
    holdoutCohortId: f.holdoutCohortId,
    treatmentPercentage: numeric(f.treatmentPercentage) as number,
    offerType: f.offerType,
    offerConfig: json(f.offerConfig, "offerConfig", local),
    controlConfig: json(f.controlConfig, "controlConfig", local),
    plannedStartDate: f.plannedStartDate ? `${f.plannedStartDate}T00:00:00Z` : "",
    plannedEndDate: f.plannedEndDate ? `${f.plannedEndDate}T00:00:00Z` : "",
    approvers: f.approvers.split(/[\s,]+/).map((a) => a.trim()).filter(Boolean),
    // Always sent, blanks as the server's defaults, so clearing a field in an edit really resets it
    // (update_experiment leaves an omitted field as it was).
    placement: f.placement.trim() || DEFAULT_PLACEMENT,
    trafficPercentage: (optionalNumber(f.trafficPercentage) ?? 100) as number,
  });
  return { definition, local };
}

export function planRequestOf(experimentId: string, p: PlanForm): CreateRolloutPlanRequest {
  const stages = p.stages.split(/[\s,→>]+/).map((s) => s.replace(/%/g, "").trim()).filter(Boolean).map(numeric);
  const hours = optionalNumber(p.minHoursAtStage);
  const exposures = optionalNumber(p.minExposuresPerArm);
  const perStage = hours !== undefined || exposures !== undefined;
  return {
    experimentId,
    stages: perStage
      ? stages.map((percentage) => clean({ percentage, minHoursAtStage: hours, minExposuresPerArm: exposures })) as never
      : stages as never,
    autoProgress: p.autoProgress, pauseOnViolation: p.pauseOnViolation, rollbackOnFailure: p.rollbackOnFailure,
  };
}

/**
 * Assign each server error to the form field it belongs to: the longest registered key that is the
 * path or a dot-prefix of it (`kpis.0.name` → `kpis.0.name`, `approvers.1` → `approvers`); an error
 * that matches no field (e.g. `(payload)`, a rule across fields) goes to the form as a whole ("").
 */
export function errorsByField(errors: FieldError[], keys: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const raw of errors) {
    // pydantic words a custom check's failure "Value error, <message>": the message is what a person needs.
    const err = { path: raw.path, message: raw.message.replace(/^Value error, /, "") };
    const match = keys.filter((k) => err.path === k || err.path.startsWith(`${k}.`)).sort((a, b) => b.length - a.length)[0] ?? "";
    out.set(match, [...(out.get(match) ?? []), match === err.path || match === "" ? err.message : `${err.path.slice(match.length + 1)}: ${err.message}`]);
  }
  return out;
}

/** Every field key of the experiment form, for `errorsByField`. */
export function experimentKeys(f: ExperimentForm): string[] {
  const fixed = ["name", "description", "hypothesis", "hypothesis.statement", "hypothesis.expectedImpact", "hypothesis.risksIdentified",
    "hypothesis.successCriteria", "kpis", "guardrails", "holdoutCohortId", "treatmentPercentage", "offerType", "offerConfig",
    "controlConfig", "plannedStartDate", "plannedEndDate", "approvers", "placement", "trafficPercentage"];
  const kpiKeys = f.kpis.flatMap((_, i) => [`kpis.${i}`, ...["name", "type", "metric", "baselineValue", "targetValue", "threshold", "direction"].map((k) => `kpis.${i}.${k}`)]);
  const guardKeys = f.guardrails.flatMap((_, i) => [`guardrails.${i}`, ...["kpiName", "metric", "maxThreshold", "minThreshold", "violationAction"].map((k) => `guardrails.${i}.${k}`)]);
  return [...fixed, ...kpiKeys, ...guardKeys];
}

export const PLAN_KEYS = ["stages", "autoProgress", "pauseOnViolation", "rollbackOnFailure"];

/** Plan errors: per-stage requirement paths (`stages.0.minHoursAtStage`) shown at the shared inputs. */
export function planErrors(errors: FieldError[]): Map<string, string[]> {
  const mapped = errors.map((e) => {
    const m = /^stages\.\d+\.(minHoursAtStage|minExposuresPerArm)/.exec(e.path);
    return m ? { path: m[1], message: e.message } : e;
  });
  return errorsByField(mapped, [...PLAN_KEYS, "minHoursAtStage", "minExposuresPerArm"]);
}
