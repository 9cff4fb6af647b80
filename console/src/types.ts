// The wire types of the contract (/work/shared/spec/API.md; offerlab's extensions in docs/): requests
// and responses of the callables, and the documents the console reads from Firestore
// (docs/data-model.md). camelCase as on the wire; times are RFC 3339 strings in responses and
// Firestore Timestamps in documents (read through `toDate` in format.ts).

export type Role = "experimenter" | "approver" | "analyst" | "service" | "admin";

export type ExperimentStatus =
  | "DRAFT" | "PENDING_APPROVAL" | "APPROVED" | "RUNNING" | "PAUSED" | "COMPLETED" | "KILLED"
  // §10: shipping
  | "SHIP_PENDING_APPROVAL" | "SHIPPED";

export type OfferType = "PRICE_CHANGE" | "PAYWALL" | "PROMO" | "BUNDLE" | "TRIAL";
export const OFFER_TYPES: OfferType[] = ["PRICE_CHANGE", "PAYWALL", "PROMO", "BUNDLE", "TRIAL"];

export type Metric = "net_ltv" | "arpu" | "conversion_rate" | "trial_conversion_rate" | "churn_rate" | "refund_rate";
export const METRICS: Metric[] = ["net_ltv", "arpu", "conversion_rate", "trial_conversion_rate", "churn_rate", "refund_rate"];

export type KpiType = "PRIMARY" | "SECONDARY" | "GUARDRAIL";
export type Direction = "INCREASE" | "DECREASE" | "MAINTAIN";
export type ViolationAction = "ALERT" | "PAUSE" | "KILL";
export type Arm = "HOLDOUT" | "CONTROL" | "TREATMENT" | "NOT_ENROLLED" | "SHIPPED";
export type Health = "HEALTHY" | "WARNING" | "CRITICAL" | "DEGRADED";
export type DataQuality = "HIGH" | "MEDIUM" | "LOW" | "INSUFFICIENT";
export type SpilloverChannel = "referral" | "gift" | "shared_wallet";
export type SpilloverAction = "ALLOW" | "BLOCK" | "FLAG";
export type RolloutStatus = "PLANNED" | "ACTIVE" | "PAUSED" | "ABORTED" | "COMPLETED";
export type CohortStatus = "DRAFT" | "FROZEN" | "RETIRED";

export interface Hypothesis {
  statement: string;
  expectedImpact?: string;
  risksIdentified?: string[];
  successCriteria?: string[];
}

export interface Kpi {
  name: string;
  type: KpiType;
  metric: Metric;
  baselineValue?: number | null;
  targetValue?: number | null;
  threshold?: number | null;
  direction: Direction;
}

export interface Guardrail {
  kpiName: string;
  metric: Metric;
  maxThreshold?: number | null;
  minThreshold?: number | null;
  /** §11: a relative guardrail, percent worse than CONTROL. */
  maxRelativeDelta?: number | null;
  violationAction: ViolationAction;
}

/** The definition fields of create_experiment (§3), with the §10 and §13 extensions. */
export interface ExperimentDefinition {
  name: string;
  description?: string;
  hypothesis: Hypothesis;
  kpis: Kpi[];
  guardrails: Guardrail[];
  holdoutCohortId: string;
  treatmentPercentage: number;
  offerType: OfferType;
  offerConfig: Record<string, unknown>;
  controlConfig?: Record<string, unknown>;
  plannedStartDate: string;
  plannedEndDate: string;
  approvers: string[];
  /** §10 */
  placement?: string;
  /** §10 */
  trafficPercentage?: number;
  /** §13 */
  regions?: { allow?: string[]; deny?: string[] };
  /** §13 */
  audience?: "NEW_CUSTOMERS" | "ALL";
}

export interface Approval {
  approver: string;
  approvedAt?: unknown;
  comment?: string | null;
}

/** An `offerExperiments` document (docs/data-model.md) with its id. */
export interface Experiment extends ExperimentDefinition {
  experimentId: string;
  author: string;
  salt: string;
  status: ExperimentStatus;
  approvals?: Record<string, Approval>;
  coverage?: number | null;
  stageIndex?: number | null;
  startedAt?: unknown;
  endedAt?: unknown;
  statusReason?: string | null;
  version?: number;
  lastChange?: { action: string; actor: string; at: unknown; version: number };
  createdAt?: unknown;
  /** §10: the traffic segments of the placement's layer it holds (set by the start). */
  trafficSegments?: Array<{ start: number; end: number }>;
  /** §10: the FROZEN cohorts covering it when it started. */
  coveringCohortIds?: string[];
  /** §10: the ship request, its approvals, and its outcome (docs/data-model.md). */
  ship?: Ship | null;
}

/** `offerExperiments.ship` (docs/program.md §7). */
export interface Ship {
  arm: "TREATMENT" | "CONTROL";
  reason: string;
  requestedBy: string;
  requestedAt?: unknown;
  /** Ship approvals by approver email (four eyes again). */
  approvals?: Record<string, Approval>;
  shippedAt?: unknown;
  /** The FROZEN cohorts covering the ship: their members keep the status quo. */
  coveringCohortIds?: string[];
  rejectedBy?: string | null;
  rejectionReason?: string | null;
  unshippedAt?: unknown;
  unshippedBy?: string | null;
  unshipReason?: string | null;
}

export interface RolloutStage {
  percentage: number;
  minHoursAtStage?: number;
  minExposuresPerArm?: number;
  requireNoSrm?: boolean;
  requireNoGuardrailViolation?: boolean;
  requireNoOpenIssues?: boolean;
}

/** A `rolloutPlans/{experimentId}` document. */
export interface RolloutPlan {
  experimentId: string;
  stages: RolloutStage[];
  autoProgress: boolean;
  pauseOnViolation: boolean;
  rollbackOnFailure: boolean;
  status: RolloutStatus;
  currentStageIndex: number;
  stageEnteredAt?: unknown;
  statusReason?: string | null;
  version?: number;
}

export interface CreateRolloutPlanRequest {
  experimentId: string;
  stages?: Array<number | RolloutStage>;
  autoProgress: boolean;
  pauseOnViolation: boolean;
  rollbackOnFailure: boolean;
}

/** `experimentEvents` and `rolloutEvents` documents: the timeline. */
export interface TimelineEvent {
  id: string;
  experimentId: string;
  eventType: string;
  actor?: string;
  fromStatus?: string;
  toStatus?: string;
  version?: number;
  payload?: Record<string, unknown>;
  occurredAt?: unknown;
  tick?: string | null;
}

export interface HoldoutCohort {
  cohortId: string;
  name: string;
  percentage: number;
  description?: string;
  salt: string;
  status: CohortStatus;
  spilloverPolicy?: Partial<Record<SpilloverChannel, SpilloverAction>>;
  /** §10: omitted or empty = global. */
  scope?: { placements?: string[]; offerTypes?: OfferType[] } | null;
  createdBy?: string;
  createdAt?: unknown;
  frozenAt?: unknown;
  retiredAt?: unknown;
  retirementReason?: string | null;
}

export interface CreateHoldoutCohortRequest {
  name: string;
  percentage: number;
  description?: string;
  spilloverPolicy?: Partial<Record<SpilloverChannel, SpilloverAction>>;
  /** §10 */
  scope?: { placements?: string[]; offerTypes?: OfferType[] };
}

export interface HoldoutHealth {
  cohortId: string;
  status?: CohortStatus;
  frozen: boolean;
  assignedUsers: number;
  evaluatedUsers?: number;
  contaminatedUsers: number;
  contaminationRate: number | null;
  expectedShare: number;
  observedShare: number | null;
  srmPValue: number | null;
  health: Health;
  issues: string[];
  /** §10: users a get_offer answer of a covered experiment or shipped offer reached, and those of them held out. */
  exposedUsers?: number;
  exposedHoldoutUsers?: number;
}

/** §10: the holdout's read-out. */
export interface HoldoutAnalysis {
  analysisId: string;
  cohortId: string;
  metric: Metric;
  holdoutUsers: number;
  comparisonUsers: number;
  holdoutMean: number | null;
  comparisonMean: number | null;
  liftPercent: number | null;
  confidenceInterval: [number, number] | null;
  pValue: number | null;
  shippedExperiments: Array<{
    experimentId: string; arm: string; shippedAt: string | null;
    experimentLiftPercent: number | null; experimentLiftSePercent?: number | null; shrunkLiftPercent: number | null;
  }>;
  method: string;
  createdBy?: string;
  createdAt?: unknown;
}

export interface ChecklistItem {
  item: string;
  ok: boolean;
  detail: string;
}

/** get_launch_checklist: what start_experiment would decide now; warnings never block the start. */
export interface LaunchChecklist {
  experimentId: string;
  status: string;
  ready: boolean;
  checklist: ChecklistItem[];
  warnings: ChecklistItem[];
}

export interface GuardrailState {
  kpiName: string;
  metric: string;
  observed: number | null;
  threshold: number | null;
  action: string;
  direction?: "max" | "min" | string;
  confidenceBound?: number | null;
  pValue?: number | null;
  breached?: boolean;
  status?: string;
  pointBeyondThreshold?: boolean;
  nTreatment?: number;
  nControl?: number;
  /** §11: absolute (maxThreshold/minThreshold), relative (maxRelativeDelta), kpi (a GUARDRAIL KPI). */
  type?: "absolute" | "relative" | "kpi" | string;
  /** What observed, bound and threshold are in: value, percent (relative) or fraction (KPI change). */
  unit?: "value" | "percent" | "fraction" | string;
  alpha?: number;
}

export interface MonitorResult {
  experimentId: string;
  status: ExperimentStatus;
  health: Health;
  issues: string[];
  stage: number | null;
  stageIndex: number | null;
  exposures: { CONTROL: number; TREATMENT: number; HOLDOUT: number };
  srmPValue: number | null;
  guardrails: GuardrailState[];
  exclusions?: Record<string, Record<string, number>>;
  keptUsers?: Record<string, number>;
  documentsRead?: number;
}

export interface StageProgress {
  experimentId: string;
  ready: boolean;
  met: string[];
  blocking: string[];
  status?: RolloutStatus;
  stageIndex?: number;
  stage?: number;
  nextStage?: number | null;
  exposures?: Record<string, number>;
  srmPValue?: number | null;
  hoursAtStage?: number;
}

export interface GuardrailCheckResult {
  experimentId: string;
  violations: Array<{ kpiName: string; metric: string; observed: number | null; threshold: number | null; action: string }>;
  actionTaken: string;
  dryRun?: boolean;
  guardrails?: GuardrailState[];
}

export interface BiasAdjustment {
  type: string;
  affectedUserCount: number;
  severity: string;
  byArm?: Record<string, number>;
}

/** The result of analyze_experiment and an `experimentAnalyses` document. */
export interface Analysis {
  analysisId: string;
  experimentId: string;
  metric: Metric;
  rawPercentChange: number | null;
  correctedPercentChange: number | null;
  pValue: number | null;
  confidenceInterval: [number, number] | null;
  rawConfidenceInterval?: [number, number] | null;
  sampleSizes: { CONTROL: number; TREATMENT: number };
  srmPValue: number | null;
  biasAdjustments: BiasAdjustment[];
  dataQuality: DataQuality;
  dataQualityReasons?: string[];
  recommendation: string;
  recommendationReason?: string;
  method: string;
  /** §11 */
  sequential?: { confidenceInterval: [number, number] | null; pValue: number | null; absoluteInterval?: [number, number] | null };
  createdBy?: string;
  createdAt?: unknown;
}

export interface Alert {
  alertId: string;
  type: string;
  severity: string;
  experimentId: string | null;
  reason?: string;
  actionTaken?: string;
  problems?: string[];
  changedFields?: string[];
  detectedAt?: unknown;
  raisedAt?: unknown;
  acknowledged: boolean;
  acknowledgedBy?: string;
  acknowledgedAt?: unknown;
  /** §11: the comment given with acknowledge_alert. */
  acknowledgementComment?: string;
}

export interface LedgerEntry {
  experimentId: string;
  sequence: number;
  eventType: string;
  actor: string;
  sourceKind?: string;
  sourceDocument?: string;
  payload?: Record<string, unknown>;
  recordedAt: string;
  prevHash: string;
  hash: string;
  /** §12: the canonical bytes that were hashed: the entry's Merkle leaf (docs/ledger.md §11). */
  canonical?: string;
  leafIndex?: number;
}

export interface AuditTrail {
  experimentId: string;
  entries: LedgerEntry[];
  pendingEntries?: number;
  nextAfterSequence?: number | null;
}

export interface LedgerVerification {
  experimentId?: string;
  valid: boolean;
  entriesChecked: number;
  headHash: string | null;
  firstBadSequence?: number | null;
  errors: Array<{ sequence?: number; code?: string; message?: string } | string>;
  recordedHead?: { lastSequence: number; headHash: string; count: number } | null;
  pendingEntries?: number;
  /** §12: the Merkle tree of the entries as stored. */
  treeSize?: number;
  rootHash?: string;
  /** §12: the latest checkpoint published outside the database, which the chain was checked against. */
  checkpoint?: { treeSize: number; rootHash: string; signatureVerified: boolean; note: string } | null;
}

export interface LedgerStatistics {
  totalExperiments: number;
  activeExperiments: number;
  completedExperiments: number;
  killedExperiments: number;
  totalEntries: number;
}

/** §12 */
export interface Checkpoint {
  checkpoint: string;
  treeSize: number;
  rootHash: string;
  verifierKey: string;
  origin?: string;
}

/** §12; `checkpoint` is the signed note of the tree the proof is for (when the default size was used). */
export interface InclusionProof { leafIndex: number; treeSize: number; leafHash: string; proof: string[]; sequence?: number; checkpoint?: string | null }
export interface ConsistencyProof { fromSize: number; toSize: number; proof: string[] }

export interface OfferAnswer {
  userId: string;
  arm: Arm;
  experimentId: string | null;
  offerConfig: Record<string, unknown> | null;
  /** §10 */
  placement?: string;
  reason?: string;
  /** §13 */
  referencePrice?: number | null;
}

export interface GetOfferRequest {
  userId?: string;
  experimentId?: string;
  /** §10 */
  placement?: string;
  /** §13 */
  region?: string;
}

export type ExportFormat = "csv" | "json" | "html";
