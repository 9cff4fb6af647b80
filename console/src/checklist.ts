// The names a person reads for the launch checklist's items. The items themselves come from the server
// (get_launch_checklist, or start_experiment's refusal): the console never re-implements the rules.

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
  compliance: "Store rules and regions",
  power: "Power of the primary KPI",
};
