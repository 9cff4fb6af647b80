// The one module that talks to Firebase. Everything else in the console calls the typed functions
// below: one per callable of the contract (API.md §3, §10–§12), the Firestore reads the rules allow
// staff (firestore.rules), sign-in, and the HTTP export (API.md §4). Written once against API.md.
//
// Where the emulators are: the Hosting emulator serves `/__/firebase/init.js?useEmulator=true`, which
// calls `firebase.initializeApp(config)` and `firebase.<product>().useEmulator(host, port)` for every
// emulator that runs (firebase-tools templates/hosting/init.js). We load it with a small recorder in
// place of the compat SDK, so the console finds the suite's ports whatever OFFERLAB_PORT_OFFSET shifted
// them to, and nothing is configured twice. On real Firebase Hosting, `/__/firebase/init.json` gives
// the project's web config and no emulator is used.

import { initializeApp, type FirebaseApp, type FirebaseOptions } from "firebase/app";
import {
  connectAuthEmulator, getAuth, onIdTokenChanged, signInWithEmailAndPassword, signOut as fbSignOut, type Auth,
} from "firebase/auth";
import {
  collection, connectFirestoreEmulator, doc, getDoc, getDocs, getFirestore, limit, orderBy, query, where,
  type DocumentData, type Firestore, type QueryConstraint,
} from "firebase/firestore/lite";
import { connectFunctionsEmulator, getFunctions, httpsCallable, type Functions } from "firebase/functions";

import type {
  Alert, Analysis, AuditTrail, Checkpoint, ConsistencyProof, CreateHoldoutCohortRequest, CreateRolloutPlanRequest,
  Experiment, ExperimentDefinition, ExportFormat, GetOfferRequest, GuardrailCheckResult, HoldoutAnalysis,
  HoldoutCohort, HoldoutHealth, InclusionProof, LaunchChecklist, LedgerStatistics, LedgerVerification, Metric,
  MonitorResult,
  OfferAnswer, Role, RolloutPlan, StageProgress, TimelineEvent,
} from "./types";

export const REGION = "us-central1";
const KNOWN_ROLES: Role[] = ["experimenter", "approver", "analyst", "service", "admin"];

// --- errors ---------------------------------------------------------------------------------------

export interface FieldError { path: string; message: string }

/** A refused call: the HttpsError code of API.md §9, its message and details. */
export class ApiError extends Error {
  constructor(readonly code: string, message: string, readonly details: unknown = undefined) {
    super(message);
    this.name = "ApiError";
  }

  /** INVALID_ARGUMENT's `details.fields[]` (API.md §9): each bad field path in wire names. */
  get fields(): FieldError[] {
    const fields = (this.details as { fields?: unknown } | undefined)?.fields;
    return Array.isArray(fields) ? fields.filter((f): f is FieldError => typeof f?.path === "string") : [];
  }

  /** start_experiment's FAILED_PRECONDITION `details.checklist`. */
  get checklist(): Array<{ item: string; ok: boolean; detail: string }> | null {
    const list = (this.details as { checklist?: unknown } | undefined)?.checklist;
    return Array.isArray(list) ? list : null;
  }
}

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as { code?: string; message?: string; details?: unknown };
  // The JS SDK names codes "functions/invalid-argument"; the contract names them INVALID_ARGUMENT.
  const raw = (e?.code ?? "unknown").replace(/^functions\//, "");
  // The SDK appends the HTTP status to the server's message ("The request is invalid. [400]"); the code says it.
  const message = (e?.message ?? String(err)).replace(/\s\[\d+\]$/, "");
  return new ApiError(raw.replace(/-/g, "_").toUpperCase(), message, e?.details);
}

// --- set-up ---------------------------------------------------------------------------------------

interface Emulators { auth?: string; firestore?: [string, number]; functions?: [string, number] }

interface Handles { app: FirebaseApp; auth: Auth; db: Firestore; functions: Functions; emulated: boolean }

let handles: Handles | null = null;

function loadScript(src: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const tag = document.createElement("script");
    tag.src = src;
    tag.onload = () => { tag.remove(); resolve(); };
    tag.onerror = () => { tag.remove(); reject(new Error(`could not load ${src}`)); };
    document.head.appendChild(tag);
  });
}

/** The Hosting emulator's init script, run against a recorder of what it asks the SDK to do. */
async function emulatorSetup(): Promise<{ config: FirebaseOptions; emulators: Emulators }> {
  let config: FirebaseOptions | null = null;
  const emulators: Emulators = {};
  const w = window as unknown as { firebase?: unknown };
  w.firebase = {
    initializeApp: (c: FirebaseOptions) => { config = c; },
    auth: () => ({ useEmulator: (url: string) => { emulators.auth = url; } }),
    firestore: () => ({ useEmulator: (host: string, port: number) => { emulators.firestore = [host, port]; } }),
    functions: () => ({ useEmulator: (host: string, port: number) => { emulators.functions = [host, port]; } }),
  };
  try {
    await loadScript("/__/firebase/init.js?useEmulator=true");
  } finally {
    delete w.firebase;
  }
  if (!config) throw new Error("the Hosting emulator gave no Firebase configuration");
  return { config, emulators };
}

function isLocal(): boolean {
  return ["localhost", "127.0.0.1", "[::1]"].includes(location.hostname);
}

/** Initialise Firebase once: call before anything else. */
export async function connect(): Promise<void> {
  if (handles) return;
  let config: FirebaseOptions;
  let emulators: Emulators = {};
  if (isLocal()) {
    ({ config, emulators } = await emulatorSetup());
  } else {
    config = await (await fetch("/__/firebase/init.json")).json();
  }
  const app = initializeApp(config);
  const auth = getAuth(app);
  const db = getFirestore(app);
  const functions = getFunctions(app, REGION);
  if (emulators.auth) connectAuthEmulator(auth, emulators.auth, { disableWarnings: true });
  if (emulators.firestore) connectFirestoreEmulator(db, ...emulators.firestore);
  if (emulators.functions) connectFunctionsEmulator(functions, ...emulators.functions);
  handles = { app, auth, db, functions, emulated: Boolean(emulators.functions) };
}

function h(): Handles {
  if (!handles) throw new Error("api.connect() has not run");
  return handles;
}

export function isEmulated(): boolean {
  return h().emulated;
}

// --- who is signed in -----------------------------------------------------------------------------

export interface Session { uid: string; email: string | null; name: string | null; roles: Role[] }

/** Calls `listener` with the session (roles from the ID token's `roles` claim, API.md §1) or null. */
export function onSession(listener: (session: Session | null) => void): () => void {
  return onIdTokenChanged(h().auth, async (user) => {
    if (!user) { listener(null); return; }
    const token = await user.getIdTokenResult();
    const raw = token.claims.roles;
    const roles = (Array.isArray(raw) ? raw : []).filter((r): r is Role => KNOWN_ROLES.includes(r as Role));
    listener({ uid: user.uid, email: user.email, name: user.displayName, roles });
  });
}

export async function signIn(email: string, password: string): Promise<void> {
  try {
    await signInWithEmailAndPassword(h().auth, email, password);
  } catch (err) {
    const code = (err as { code?: string }).code ?? "";
    const wrong = ["auth/invalid-credential", "auth/wrong-password", "auth/user-not-found", "auth/invalid-email"];
    throw new ApiError("UNAUTHENTICATED", wrong.includes(code) ? "Wrong email or password." : `Sign-in failed (${code || err}).`);
  }
}

export function signOut(): Promise<void> {
  return fbSignOut(h().auth);
}

async function idToken(): Promise<string> {
  const user = h().auth.currentUser;
  if (!user) throw new ApiError("UNAUTHENTICATED", "Sign in first.");
  return user.getIdToken();
}

// --- callables: one typed function each -----------------------------------------------------------

async function call<Req, Res>(name: string, data: Req): Promise<Res> {
  try {
    const fn = httpsCallable<Req, Res>(h().functions, name, { timeout: 180_000 });
    return (await fn(data)).data;
  } catch (err) {
    throw toApiError(err);
  }
}

type Id = { experimentId: string };
type WithReason = Id & { reason: string };
/** The experiment as the lifecycle callables return it. */
type ExperimentView = Experiment & Record<string, unknown>;
type PlanView = RolloutPlan & { stage?: number | null } & Record<string, unknown>;

// Holdouts (§3, §10)
export const createHoldoutCohort = (r: CreateHoldoutCohortRequest) => call<CreateHoldoutCohortRequest, HoldoutCohort>("create_holdout_cohort", r);
export const freezeHoldoutCohort = (cohortId: string) => call<{ cohortId: string }, HoldoutCohort>("freeze_holdout_cohort", { cohortId });
export const retireHoldoutCohort = (cohortId: string, reason: string) => call<{ cohortId: string; reason: string }, HoldoutCohort>("retire_holdout_cohort", { cohortId, reason });
export const getHoldoutHealth = (cohortId: string) => call<{ cohortId: string }, HoldoutHealth>("get_holdout_health", { cohortId });
export const isUserInHoldout = (userId?: string) => call<{ userId?: string }, { userId: string; inHoldout: boolean; cohortIds: string[] }>("is_user_in_holdout", userId ? { userId } : {});
/** §10 */
export const analyzeHoldout = (cohortId: string, metric: Metric) => call<{ cohortId: string; metric: Metric }, HoldoutAnalysis>("analyze_holdout", { cohortId, metric });

// Experiments (§3)
export const createExperiment = (d: ExperimentDefinition) => call<ExperimentDefinition, { experimentId: string; salt: string; status: string }>("create_experiment", d);
export const updateExperiment = (experimentId: string, d: Partial<ExperimentDefinition>) => call<Partial<ExperimentDefinition> & Id, ExperimentView>("update_experiment", { experimentId, ...d });
export const submitForApproval = (experimentId: string) => call<Id, ExperimentView>("submit_for_approval", { experimentId });
export const approveExperiment = (experimentId: string, comment?: string) => call<Id & { comment?: string }, ExperimentView>("approve_experiment", comment ? { experimentId, comment } : { experimentId });
export const rejectExperiment = (experimentId: string, reason: string) => call<WithReason, ExperimentView>("reject_experiment", { experimentId, reason });
export const startExperiment = (experimentId: string) => call<Id, ExperimentView>("start_experiment", { experimentId });
export const getLaunchChecklist = (experimentId: string) => call<Id, LaunchChecklist>("get_launch_checklist", { experimentId });
export const pauseExperiment = (experimentId: string, reason: string) => call<WithReason, ExperimentView>("pause_experiment", { experimentId, reason });
export const resumeExperiment = (experimentId: string) => call<Id, ExperimentView>("resume_experiment", { experimentId });
export const completeExperiment = (experimentId: string) => call<Id, ExperimentView>("complete_experiment", { experimentId });
export const killExperiment = (experimentId: string, reason: string) => call<WithReason, ExperimentView>("kill_experiment", { experimentId, reason });
export const checkGuardrails = (experimentId: string) => call<Id, GuardrailCheckResult>("check_guardrails", { experimentId });
export const monitorExperiment = (experimentId: string) => call<Id, MonitorResult>("monitor_experiment", { experimentId });
export const getOffer = (r: GetOfferRequest) => call<GetOfferRequest, OfferAnswer>("get_offer", r);
/** §10 */
export const shipExperiment = (experimentId: string, arm: "TREATMENT" | "CONTROL", reason: string) => call<Id & { arm: string; reason: string }, ExperimentView>("ship_experiment", { experimentId, arm, reason });
/** §10 */
export const unshipExperiment = (experimentId: string, reason: string) => call<WithReason, ExperimentView>("unship_experiment", { experimentId, reason });
/** §11 */
export const acknowledgeAlert = (experimentId: string, alertId: string, comment: string) => call<Id & { alertId: string; comment: string }, Alert>("acknowledge_alert", { experimentId, alertId, comment });

// Analytics (§3)
export const analyzeExperiment = (experimentId: string, metric: Metric) => call<Id & { metric: Metric }, Analysis>("analyze_experiment", { experimentId, metric });

// Rollouts (§3)
export const createRolloutPlan = (r: CreateRolloutPlanRequest) => call<CreateRolloutPlanRequest, PlanView>("create_rollout_plan", r);
export const startRollout = (experimentId: string) => call<Id, PlanView>("start_rollout", { experimentId });
export const checkStageProgress = (experimentId: string) => call<Id, StageProgress>("check_stage_progress", { experimentId });
export const progressRollout = (experimentId: string) => call<Id, PlanView>("progress_rollout", { experimentId });
export const pauseRollout = (experimentId: string, reason: string) => call<WithReason, PlanView>("pause_rollout", { experimentId, reason });
export const rollbackRollout = (experimentId: string, reason: string) => call<WithReason, PlanView>("rollback_rollout", { experimentId, reason });
export const abortRollout = (experimentId: string, reason: string) => call<WithReason, PlanView>("abort_rollout", { experimentId, reason });

// Ledger and reports (§3, §12)
export const getAuditTrail = (experimentId: string, afterSequence?: number) => call<Id & { afterSequence?: number }, AuditTrail>("get_audit_trail", afterSequence ? { experimentId, afterSequence } : { experimentId });
export const verifyLedger = (experimentId: string) => call<Id, LedgerVerification>("verify_ledger", { experimentId });
export const getAuditReport = (experimentId: string) => call<Id, Record<string, unknown>>("get_audit_report", { experimentId });
export const getLedgerStatistics = () => call<Record<string, never>, LedgerStatistics>("get_ledger_statistics", {});
/** §12 */
export const getCheckpoint = (experimentId: string) => call<Id, Checkpoint>("get_checkpoint", { experimentId });
/** §12 */
export const getInclusionProof = (experimentId: string, sequence: number, treeSize?: number) => call<Id & { sequence: number; treeSize?: number }, InclusionProof>("get_inclusion_proof", treeSize ? { experimentId, sequence, treeSize } : { experimentId, sequence });
/** §12 */
export const getConsistencyProof = (experimentId: string, fromSize: number, toSize: number) => call<Id & { fromSize: number; toSize: number }, ConsistencyProof>("get_consistency_proof", { experimentId, fromSize, toSize });

/** API.md §4, through the Hosting rewrite `/export_audit_report` (same origin), with the Bearer ID token. */
export async function exportAuditReport(experimentId: string, format: ExportFormat): Promise<Blob> {
  const params = new URLSearchParams({ experimentId, format });
  const resp = await fetch(`/export_audit_report?${params}`, { headers: { Authorization: `Bearer ${await idToken()}` } });
  if (!resp.ok) {
    let body: { error?: { status?: string; message?: string; details?: unknown } } = {};
    try { body = await resp.json(); } catch { /* not JSON */ }
    throw new ApiError(body.error?.status ?? `HTTP_${resp.status}`, body.error?.message ?? `The export failed (HTTP ${resp.status}).`, body.error?.details);
  }
  return resp.blob();
}

// --- Firestore reads (firestore.rules: staff read these; the ledger is read through its callables) -----

async function read<T>(path: string, id: string, idField: string): Promise<T | null> {
  try {
    const snap = await getDoc(doc(h().db, path, id));
    return snap.exists() ? ({ ...snap.data(), [idField]: snap.id } as T) : null;
  } catch (err) {
    throw firestoreError(err);
  }
}

async function list<T>(path: string, idField: string, ...constraints: QueryConstraint[]): Promise<T[]> {
  try {
    const snaps = await getDocs(query(collection(h().db, path), ...constraints));
    return snaps.docs.map((s) => ({ ...(s.data() as DocumentData), [idField]: s.id }) as T);
  } catch (err) {
    throw firestoreError(err);
  }
}

function firestoreError(err: unknown): ApiError {
  const code = String((err as { code?: string }).code ?? "unknown").replace(/-/g, "_").toUpperCase();
  return new ApiError(code, code === "PERMISSION_DENIED" ? "Your role may not read this." : String((err as Error).message ?? err));
}

export const listExperiments = () => list<Experiment>("offerExperiments", "experimentId", orderBy("createdAt", "desc"), limit(200));
export const getExperiment = (id: string) => read<Experiment>("offerExperiments", id, "experimentId");
/** Experiments that name `email` as an approver (the inbox filters on status and approvals). */
export const listExperimentsForApprover = (email: string) => list<Experiment>("offerExperiments", "experimentId", where("approvers", "array-contains", email));
export const getRolloutPlan = (experimentId: string) => read<RolloutPlan>("rolloutPlans", experimentId, "experimentId");
export const listExperimentEvents = (experimentId: string) => list<TimelineEvent>("experimentEvents", "id", where("experimentId", "==", experimentId));
export const listRolloutEvents = (experimentId: string) => list<TimelineEvent>("rolloutEvents", "id", where("experimentId", "==", experimentId));
export const listAnalyses = (experimentId: string) => list<Analysis>("experimentAnalyses", "analysisId", where("experimentId", "==", experimentId));
/** The latest analyses of every experiment (for the list's "last analysis" column). */
export const listRecentAnalyses = () => list<Analysis>("experimentAnalyses", "analysisId", orderBy("createdAt", "desc"), limit(300));
export const listAlerts = (experimentId: string) => list<Alert>("experimentAlerts", "alertId", where("experimentId", "==", experimentId));
export const listOpenAlerts = () => list<Alert>("experimentAlerts", "alertId", where("acknowledged", "==", false), limit(300));
export const listCohorts = () => list<HoldoutCohort>("holdoutCohorts", "cohortId", orderBy("createdAt", "desc"), limit(200));
export const getCohort = (id: string) => read<HoldoutCohort>("holdoutCohorts", id, "cohortId");
/** True when the experiment's creation event exists: the ledger's source (launch checklist `ledger_recording`). */
export async function hasCreationEvent(experimentId: string): Promise<boolean> {
  return (await read<TimelineEvent>("experimentEvents", `${experimentId}_000001`, "id")) !== null;
}
