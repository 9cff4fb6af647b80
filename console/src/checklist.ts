// The launch checklist as the console can pre-evaluate it from the stored documents, in the order and
// with the rules of docs/lifecycle.md §2, so an approver or author sees why an experiment cannot start
// yet before anyone presses Start. It is labelled a pre-flight everywhere it is shown: start_experiment
// evaluates the same list inside its transaction and decides (its FAILED_PRECONDITION details.checklist
// replaces this one when a start is refused). §10's placement_capacity depends on the other experiments
// holding the placement's traffic (placementLayers, which staff may not list here) and is left to it.
// Pure: no Firebase, no DOM.

import type { ChecklistItem, Experiment, HoldoutCohort, RolloutPlan } from "./types";

export interface PreflightInputs {
  experiment: Experiment;
  cohort: HoldoutCohort | null;
  plan: RolloutPlan | null;
  /** experimentEvents/{id}_000001 exists (null: not known). */
  creationEvent: boolean | null;
}

/** API.md §10: a cohort covers an experiment when its scope is global (empty), lists the experiment's
 *  placement, or lists its offer type (its FROZEN status is the frozen_holdout item). */
export function scopeIncludes(cohort: HoldoutCohort, e: Experiment): boolean {
  const placements = cohort.scope?.placements ?? [];
  const types = cohort.scope?.offerTypes ?? [];
  if (!placements.length && !types.length) return true;
  return placements.includes(e.placement ?? "default") || types.includes(e.offerType);
}

export function preflight({ experiment: e, cohort, plan, creationEvent }: PreflightInputs): ChecklistItem[] {
  const approvers = e.approvers ?? [];
  const approved = Object.keys(e.approvals ?? {}).map((a) => a.toLowerCase());
  const missing = approvers.filter((a) => !approved.includes(a.toLowerCase()));
  const primaries = (e.kpis ?? []).filter((k) => k.type === "PRIMARY").length;
  const policy = cohort?.spilloverPolicy ?? {};
  const open = (["gift", "shared_wallet"] as const).filter((c) => (policy[c] ?? "ALLOW") === "ALLOW");
  const killSwitch = (e as unknown as { killSwitch?: { enabled?: boolean } }).killSwitch;
  return [
    {
      item: "frozen_holdout", ok: cohort?.status === "FROZEN",
      detail: cohort ? `holdout ${cohort.name} is ${cohort.status}` : `holdout ${e.holdoutCohortId || "(none)"} not found`,
    },
    {
      item: "hypothesis", ok: Boolean(e.hypothesis?.statement?.trim()) && (e.hypothesis?.successCriteria ?? []).length > 0,
      detail: !e.hypothesis?.statement?.trim() ? "no hypothesis statement"
        : (e.hypothesis?.successCriteria ?? []).length ? "statement and success criteria" : "no success criterion",
    },
    { item: "primary_kpi", ok: primaries === 1, detail: `${primaries} PRIMARY KPI${primaries === 1 ? "" : "s"} (exactly one needed)` },
    { item: "guardrails", ok: (e.guardrails ?? []).length > 0, detail: `${(e.guardrails ?? []).length} guardrail(s)` },
    {
      item: "spillover_isolation", ok: Boolean(cohort) && open.length === 0,
      detail: !cohort ? "no holdout" : open.length ? `the holdout ALLOWs ${open.join(" and ")}` : "gift and shared_wallet are not ALLOW",
    },
    {
      item: "approvals", ok: approvers.length > 0 && missing.length === 0,
      detail: approvers.length === 0 ? "no approver listed" : missing.length ? `waiting for ${missing.join(", ")}` : "every approver approved",
    },
    { item: "kill_switch", ok: killSwitch?.enabled !== false, detail: killSwitch?.enabled === false ? "kill-switch disabled" : "subscribed" },
    {
      item: "ledger_recording", ok: creationEvent === true,
      detail: creationEvent === null ? "not known" : creationEvent ? "creation event recorded" : "no creation event",
    },
    {
      item: "rollout_plan", ok: plan?.status === "PLANNED" && (plan.stages ?? []).length > 0,
      detail: !plan ? "no rollout plan configured"
        : `${plan.status}, stages ${(plan.stages ?? []).map((s) => `${s.percentage} %`).join(" → ")}`,
    },
    {
      item: "holdout_coverage", ok: Boolean(cohort) && scopeIncludes(cohort!, e),
      detail: !cohort ? "no holdout" : scopeIncludes(cohort, e)
        ? `the holdout's scope includes placement ${e.placement ?? "default"}`
        : `the holdout's scope does not include placement ${e.placement ?? "default"} or ${e.offerType}: it would hold nobody out`,
    },
  ];
}

/** Human names of the checklist items. */
export const ITEM_LABELS: Record<string, string> = {
  frozen_holdout: "Frozen holdout cohort",
  hypothesis: "Hypothesis and success criteria",
  primary_kpi: "Exactly one primary KPI",
  guardrails: "At least one guardrail",
  spillover_isolation: "Spillover isolation",
  approvals: "All approvers approved",
  kill_switch: "Kill-switch subscribed",
  ledger_recording: "Ledger recording",
  rollout_plan: "Rollout plan configured",
  holdout_coverage: "The holdout covers it",
  placement_capacity: "Room in the placement",
};
