// What an experiment is: hypothesis, risks, success criteria, KPIs, guardrails, offers, approvals.
import { day, label, num, when } from "../format";
import type { Approval, Experiment, HoldoutCohort } from "../types";
import { Badge, KeyValues } from "./ui";

export function Hypothesis({ experiment: e }: { experiment: Experiment }) {
  const h = e.hypothesis ?? { statement: "" };
  return (
    <div class="hypothesis">
      <blockquote>{h.statement || <span class="muted">no hypothesis</span>}</blockquote>
      {h.expectedImpact ? <p><span class="muted">Expected impact:</span> {h.expectedImpact}</p> : null}
      <div class="cols">
        <div>
          <h4>Risks identified</h4>
          {h.risksIdentified?.length ? <ul class="risks">{h.risksIdentified.map((r) => <li key={r}>{r}</li>)}</ul> : <p class="muted">none listed</p>}
        </div>
        <div>
          <h4>Success criteria</h4>
          {h.successCriteria?.length ? <ul>{h.successCriteria.map((r) => <li key={r}>{r}</li>)}</ul> : <p class="muted">none listed</p>}
        </div>
      </div>
    </div>
  );
}

/** Who approved: the launch approvals, or (with `book`) another set such as the ship approvals (§10). */
export function Approvals({ experiment: e, book, label: name = "Approvals" }: { experiment: Experiment; book?: Record<string, Approval>; label?: string }) {
  const approvals = book ?? e.approvals ?? {};
  return (
    <table class="grid compact" aria-label={name}>
      <thead><tr><th>Approver</th><th>Decision</th><th>When</th><th>Comment</th></tr></thead>
      <tbody>
        {(e.approvers ?? []).map((who) => {
          const a = approvals[who] ?? approvals[who.toLowerCase()];
          return (
            <tr key={who} data-approver={who}>
              <td>{who}</td>
              <td>{a ? <Badge value="APPROVED" tone="green" /> : <Badge value="WAITING" tone="amber" />}</td>
              <td>{a ? when(a.approvedAt) : "—"}</td>
              <td>{a?.comment ?? ""}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

export function Definition({ experiment: e, cohort }: { experiment: Experiment; cohort: HoldoutCohort | null }) {
  return (
    <div class="definition">
      {e.description ? <p>{e.description}</p> : null}
      <Hypothesis experiment={e} />
      <h4>KPIs</h4>
      <table class="grid compact" aria-label="KPIs">
        <thead><tr><th>Name</th><th>Type</th><th>Metric</th><th>Direction</th><th>Baseline</th><th>Target</th><th>Threshold</th></tr></thead>
        <tbody>
          {(e.kpis ?? []).map((k) => (
            <tr key={k.name}><td>{k.name}</td><td>{label(k.type)}</td><td>{k.metric}</td><td>{label(k.direction)}</td><td>{num(k.baselineValue ?? null, 4)}</td><td>{num(k.targetValue ?? null, 4)}</td><td>{num(k.threshold ?? null, 4)}</td></tr>
          ))}
        </tbody>
      </table>
      <h4>Guardrails</h4>
      {(e.guardrails ?? []).length ? (
        <table class="grid compact" aria-label="Guardrail definitions">
          <thead><tr><th>KPI</th><th>Metric</th><th>Min</th><th>Max</th><th>Relative</th><th>On violation</th></tr></thead>
          <tbody>
            {e.guardrails.map((g, i) => (
              <tr key={i}><td>{g.kpiName}</td><td>{g.metric}</td><td>{num(g.minThreshold ?? null, 4)}</td><td>{num(g.maxThreshold ?? null, 4)}</td><td>{g.maxRelativeDelta != null ? `${g.maxRelativeDelta} %` : "—"}</td><td>{label(g.violationAction)}</td></tr>
            ))}
          </tbody>
        </table>
      ) : <p class="muted">No guardrail.</p>}
      <KeyValues rows={[
        ["Holdout", cohort ? <>{cohort.name} · {cohort.percentage} % <Badge value={cohort.status} /></> : e.holdoutCohortId || "—"],
        ["Placement", `${e.placement ?? "default"} · ${e.trafficPercentage ?? 100} % of its traffic${e.trafficSegments?.length ? ` (layer buckets ${e.trafficSegments.map((s) => `${s.start}–${s.end - 1}`).join(", ")})` : ""}`],
        ["Planned", `${day(e.plannedStartDate)} → ${day(e.plannedEndDate)}`],
        ["Salt", <code>{e.salt}</code>],
      ]} />
      <div class="cols">
        <div><h4>Treatment offer</h4><pre>{JSON.stringify(e.offerConfig ?? {}, null, 2)}</pre></div>
        <div><h4>Control offer (status quo)</h4><pre>{JSON.stringify(e.controlConfig ?? {}, null, 2)}</pre></div>
      </div>
      <h4>Approvals</h4>
      <Approvals experiment={e} />
    </div>
  );
}
