import { useState } from "preact/hooks";

import * as api from "../api";
import type { Session } from "../api";
import { Badge, Empty, ErrorNote, Loading } from "../components/ui";
import { day, pct, label } from "../format";
import { useAsync } from "../hooks";
import { may } from "../permissions";
import { href } from "../router";
import type { Alert, Analysis, Experiment, MonitorResult } from "../types";

interface Row { experiment: Experiment; analysis?: Analysis; alerts: Alert[] }

const LIVE = ["RUNNING", "PAUSED"];

async function loadRows(): Promise<Row[]> {
  const [experiments, analyses, alerts] = await Promise.all([
    api.listExperiments(), api.listRecentAnalyses(), api.listOpenAlerts(),
  ]);
  const latest = new Map<string, Analysis>();
  for (const a of analyses) if (!latest.has(a.experimentId)) latest.set(a.experimentId, a);
  return experiments.map((experiment) => ({
    experiment, analysis: latest.get(experiment.experimentId),
    alerts: alerts.filter((a) => a.experimentId === experiment.experimentId),
  }));
}

export function ExperimentList({ session }: { session: Session }) {
  const rows = useAsync(() => loadRows(), [session.uid]);
  const [filter, setFilter] = useState("ALL");
  const shown = (rows.data ?? []).filter((r) => filter === "ALL" || r.experiment.status === filter);
  const statuses = Array.from(new Set((rows.data ?? []).map((r) => r.experiment.status)));
  return (
    <>
      <div class="page-head">
        <h1>Experiments</h1>
        <div class="row">
          <label for="status-filter" class="inline">Status</label>
          <select id="status-filter" value={filter} onChange={(e) => setFilter((e.target as HTMLSelectElement).value)}>
            <option value="ALL">All</option>
            {statuses.map((s) => <option key={s} value={s}>{label(s)}</option>)}
          </select>
          <button type="button" class="ghost" onClick={rows.reload} disabled={rows.loading}>Refresh</button>
          {may.createExperiment(session) ? <a class="button primary" href={href.newExperiment()}>New experiment</a> : null}
        </div>
      </div>
      <ErrorNote error={rows.error} prefix="Could not load the experiments" />
      {rows.loading && !rows.data ? <Loading what="experiments" /> : null}
      {rows.data && !shown.length ? <Empty>No experiments yet{may.createExperiment(session) ? ": create the first one." : "."}</Empty> : null}
      {shown.length ? (
        <table class="grid" aria-label="Experiments">
          <thead>
            <tr><th>Experiment</th><th>Status</th><th>Placement</th><th>Stage</th><th>Health</th><th>Guardrails</th><th>Last analysis</th></tr>
          </thead>
          <tbody>
            {shown.map((r) => <ExperimentRow key={r.experiment.experimentId} row={r} monitored={may.monitor(session) && LIVE.includes(r.experiment.status)} />)}
          </tbody>
        </table>
      ) : null}
    </>
  );
}

function ExperimentRow({ row: { experiment: e, analysis, alerts }, monitored }: { row: Row; monitored: boolean }) {
  // Health and guardrail state are a computed view (monitor_experiment), for the roles that may call it;
  // each row asks for its own, so the list shows at once and fills in.
  const monitor = useAsync<MonitorResult | null>(() => (monitored ? api.monitorExperiment(e.experimentId) : Promise.resolve(null)), [e.experimentId, e.version, monitored]);
  const m = monitor.data ?? null;
  const breached = m?.guardrails.filter((g) => g.breached).length ?? 0;
  const trending = m?.guardrails.filter((g) => !g.breached && g.pointBeyondThreshold).length ?? 0;
  const observed = m?.guardrails.filter((g) => g.observed != null).length ?? 0;
  return (
    <tr data-experiment={e.experimentId}>
      <td>
        <a href={href.experiment(e.experimentId)}>{e.name}</a>
        <div class="muted small">{label(e.offerType)} · {e.author}</div>
      </td>
      <td><Badge value={e.status} /></td>
      <td data-column="placement">{e.placement ?? "default"}{e.trafficPercentage != null && e.trafficPercentage !== 100 ? <div class="muted small">{pct(e.trafficPercentage, 0)} of its traffic</div> : null}</td>
      <td>{e.coverage != null ? pct(e.coverage, e.coverage < 10 ? 1 : 0) : <span class="muted">—</span>}</td>
      <td>{m ? <Badge value={m.health} /> : monitor.error ? <span class="muted" title={monitor.error.message}>unavailable</span> : monitored ? <span class="muted">…</span> : <span class="muted">—</span>}</td>
      <td>
        {m ? (m.guardrails.length
          ? <span>{breached ? <strong class="bad">{breached} breached</strong> : trending ? <span class="warn">{trending} trending</span> : observed ? <span class="ok">within</span> : <span class="muted">no data yet</span>} <span class="muted">of {m.guardrails.length}</span></span>
          : <span class="muted">no data yet</span>) : <span class="muted">{(e.guardrails ?? []).length} defined</span>}
        {alerts.length ? <div><Badge value={`${alerts.length} open alert${alerts.length > 1 ? "s" : ""}`} tone="red" /></div> : null}
      </td>
      <td>
        {analysis ? (
          <span>{analysis.metric} {pct(analysis.correctedPercentChange, 1, true)} <Badge value={analysis.dataQuality} /><div class="muted small">{day(analysis.createdAt)} · {label(analysis.recommendation)}</div></span>
        ) : <span class="muted">none</span>}
      </td>
    </tr>
  );
}
