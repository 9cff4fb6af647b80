// What the signed-in person may do, so each screen shows only the controls their role allows.
// The server still decides (API.md §1, docs/lifecycle.md §1): this only hides what would be refused.
// Pure: no Firebase, no DOM.

import type { Session } from "./api";
import type { Experiment, ExperimentStatus, RolloutPlan, Role } from "./types";

/** API.md §1: admin holds every role. */
export function has(session: Session | null, ...roles: Role[]): boolean {
  if (!session) return false;
  return session.roles.includes("admin") || roles.some((r) => session.roles.includes(r));
}

export const isStaff = (s: Session | null) => has(s, "experimenter", "approver", "analyst");
export const isAdmin = (s: Session | null) => Boolean(s?.roles.includes("admin"));

const email = (s: Session | null) => (s?.email ?? "").toLowerCase();

/** Author commands: the author with the experimenter role, or an admin. */
export function isAuthorOrAdmin(s: Session | null, e: Experiment): boolean {
  return isAdmin(s) || (has(s, "experimenter") && email(s) === e.author?.toLowerCase());
}

const PRE_RUN: ExperimentStatus[] = ["DRAFT", "PENDING_APPROVAL", "APPROVED"];
const TERMINAL: ExperimentStatus[] = ["COMPLETED", "KILLED", "SHIPPED", "SHIP_PENDING_APPROVAL"];

export const may = {
  createExperiment: (s: Session | null) => has(s, "experimenter"),
  edit: (s: Session | null, e: Experiment) => isAuthorOrAdmin(s, e) && PRE_RUN.includes(e.status),
  submit: (s: Session | null, e: Experiment) => isAuthorOrAdmin(s, e) && e.status === "DRAFT",
  start: (s: Session | null, e: Experiment) => isAuthorOrAdmin(s, e) && e.status === "APPROVED",
  pause: (s: Session | null, e: Experiment) => isAuthorOrAdmin(s, e) && e.status === "RUNNING",
  resume: (s: Session | null, e: Experiment) => isAuthorOrAdmin(s, e) && e.status === "PAUSED",
  complete: (s: Session | null, e: Experiment) => isAuthorOrAdmin(s, e) && (e.status === "RUNNING" || e.status === "PAUSED"),
  kill: (s: Session | null, e: Experiment) => isAdmin(s) && !TERMINAL.includes(e.status),
  /** A listed approver with the approver role, never the author; launch or ship approvals. */
  approve: (s: Session | null, e: Experiment) =>
    has(s, "approver") && (e.approvers ?? []).map((a) => a.toLowerCase()).includes(email(s))
    && email(s) !== e.author?.toLowerCase()
    && (e.status === "PENDING_APPROVAL" || e.status === "SHIP_PENDING_APPROVAL")
    && !approvedBy(e, email(s)),
  reject: (s: Session | null, e: Experiment) =>
    has(s, "approver") && (e.approvers ?? []).map((a) => a.toLowerCase()).includes(email(s))
    && email(s) !== e.author?.toLowerCase()
    && (e.status === "PENDING_APPROVAL" || e.status === "APPROVED" || e.status === "SHIP_PENDING_APPROVAL"),
  ship: (s: Session | null, e: Experiment) => isAuthorOrAdmin(s, e) && e.status === "COMPLETED",
  unship: (s: Session | null, e: Experiment) => isAdmin(s) && e.status === "SHIPPED",
  configurePlan: (s: Session | null, e: Experiment, plan: RolloutPlan | null) =>
    isAuthorOrAdmin(s, e) && PRE_RUN.includes(e.status) && (!plan || plan.status === "PLANNED"),
  progressRollout: (s: Session | null, e: Experiment, plan: RolloutPlan | null) =>
    isAuthorOrAdmin(s, e) && e.status === "RUNNING" && plan?.status === "ACTIVE"
    && plan.currentStageIndex < plan.stages.length - 1,
  pauseRollout: (s: Session | null, e: Experiment, plan: RolloutPlan | null) =>
    isAuthorOrAdmin(s, e) && plan?.status === "ACTIVE",
  resumeRollout: (s: Session | null, e: Experiment, plan: RolloutPlan | null) =>
    isAuthorOrAdmin(s, e) && e.status === "RUNNING" && plan?.status === "PAUSED",
  rollbackRollout: (s: Session | null, e: Experiment, plan: RolloutPlan | null) =>
    isAuthorOrAdmin(s, e) && (plan?.status === "ACTIVE" || plan?.status === "PAUSED") && (plan?.currentStageIndex ?? 0) > 0,
  abortRollout: (s: Session | null, _e: Experiment, plan: RolloutPlan | null) =>
    isAdmin(s) && (plan?.status === "ACTIVE" || plan?.status === "PAUSED"),
  acknowledgeAlert: (s: Session | null, e: Experiment) => isAuthorOrAdmin(s, e),
  monitor: (s: Session | null) => has(s, "experimenter", "analyst"),
  analyze: (s: Session | null) => has(s, "experimenter", "analyst"),
  /** get_audit_trail / verify_ledger (AUDITORS) and the export (analyst, approver, admin). */
  audit: (s: Session | null) => has(s, "analyst", "approver"),
  createCohort: (s: Session | null) => has(s, "experimenter"),
  retireCohort: (s: Session | null) => isAdmin(s),
  cohortHealth: (s: Session | null) => has(s, "experimenter", "analyst"),
  /** get_offer / is_user_in_holdout for another user: the service role, so admin (API.md §1). */
  askForAnyUser: (s: Session | null) => has(s, "service"),
};

/** Has `who` approved the pending launch (approvals) or the pending ship (ship.approvals, §10)? */
export function approvedBy(e: Experiment, who: string): boolean {
  const book = e.status === "SHIP_PENDING_APPROVAL" ? (e.ship?.approvals ?? {}) : (e.approvals ?? {});
  return Object.keys(book).some((k) => k.toLowerCase() === who.toLowerCase());
}
