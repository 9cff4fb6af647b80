// The audit: ledger statistics, an experiment's (or a cohort's) ledger trail, verification with the
// checkpoint status (§12), the board report (HTML) and the CSV/JSON exports (API.md §4).
import { useEffect, useState } from "preact/hooks";

import * as api from "../api";
import type { Session } from "../api";
import { Badge, Empty, ErrorNote, KeyValues, Loading, Panel } from "../components/ui";
import { count, label, shortHash } from "../format";
import { useAction, useAsync } from "../hooks";
import { may } from "../permissions";
import { go, href } from "../router";
import type { Checkpoint, ExportFormat, LedgerVerification } from "../types";

export function Audit({ session, id }: { session: Session; id?: string }) {
  const stats = useAsync(() => api.getLedgerStatistics(), []);
  const experiments = useAsync(() => api.listExperiments(), []);
  const cohorts = useAsync(() => api.listCohorts(), []);
  if (!may.audit(session)) return <Empty>The audit trail is for analysts, approvers and admins.</Empty>;
  const s = stats.data;
  return (
    <>
      <div class="page-head"><h1>Audit</h1></div>
      <ErrorNote error={stats.error} prefix="get_ledger_statistics refused" />
      {s ? (
        <div class="figures wide" aria-label="Ledger statistics">
          <div><span class="muted">Experiments</span><strong>{count(s.totalExperiments)}</strong></div>
          <div><span class="muted">Active</span><strong>{count(s.activeExperiments)}</strong></div>
          <div><span class="muted">Completed</span><strong>{count(s.completedExperiments)}</strong></div>
          <div><span class="muted">Killed</span><strong>{count(s.killedExperiments)}</strong></div>
          <div><span class="muted">Ledger entries</span><strong>{count(s.totalEntries)}</strong></div>
        </div>
      ) : null}
      <div class="row">
        <label for="chain" class="inline">Ledger of</label>
        <select id="chain" value={id ?? ""} onChange={(e) => go(href.audit((e.target as HTMLSelectElement).value || undefined))}>
          <option value="">(choose an experiment or a cohort)</option>
          <optgroup label="Experiments">
            {(experiments.data ?? []).map((e) => <option key={e.experimentId} value={e.experimentId}>{e.name} ({label(e.status)})</option>)}
          </optgroup>
          <optgroup label="Holdout cohorts">
            {(cohorts.data ?? []).map((c) => <option key={c.cohortId} value={`cohort:${c.cohortId}`}>{c.name}</option>)}
          </optgroup>
        </select>
      </div>
      {id ? <Chain key={id} id={id} name={experiments.data?.find((e) => e.experimentId === id)?.name} /> : <Empty>Choose a ledger to read and verify.</Empty>}
    </>
  );
}

function Chain({ id, name }: { id: string; name?: string }) {
  const trail = useAsync(() => api.getAuditTrail(id), [id]);
  const [verification, setVerification] = useState<LedgerVerification | null>(null);
  const verify = useAction(async () => setVerification(await api.verifyLedger(id)));
  const checkpoint = useAsync<Checkpoint | null>(() => api.getCheckpoint(id), [id, verification]);
  const isExperiment = !id.startsWith("cohort:");
  return (
    <>
      <Panel title={`Verification${name ? ` of ${name}` : ""}`} id="verify" actions={<button type="button" class="primary" disabled={verify.busy} onClick={() => verify.run()}>{verify.busy ? "Verifying…" : "Verify ledger"}</button>}>
        <ErrorNote error={verify.error} prefix="verify_ledger refused" />
        {verification ? <Verification v={verification} /> : <p class="muted">Re-hash every entry of the chain and compare it with its recorded head.</p>}
        <h3>Checkpoint</h3>
        {checkpoint.data ? (
          <KeyValues rows={[
            ["Tree size", count(checkpoint.data.treeSize)],
            ["Root hash", <code>{checkpoint.data.rootHash}</code>],
            ["Verifier key", <code class="wrap">{checkpoint.data.verifierKey}</code>],
            ["Signed note", <pre class="wrap">{checkpoint.data.checkpoint}</pre>],
          ]} />
        ) : checkpoint.error ? (
          <p class="muted" data-checkpoint="unavailable">No signed checkpoint to show: get_checkpoint answered {checkpoint.error.code}. Signed checkpoints (API.md §12) appear here once the ledger publishes them.</p>
        ) : <Loading what="the checkpoint" />}
      </Panel>
      {isExperiment ? <Exports id={id} /> : null}
      <Panel title="Ledger trail" id="trail" actions={<button type="button" class="ghost" onClick={trail.reload} disabled={trail.loading}>Refresh</button>}>
        <ErrorNote error={trail.error} prefix="get_audit_trail refused" />
        {!trail.data ? <Loading what="the trail" /> : !trail.data.entries.length ? <Empty>No entry sealed yet{trail.data.pendingEntries ? ` (${trail.data.pendingEntries} pending)` : ""}.</Empty> : (
          <>
            {trail.data.pendingEntries ? <p class="muted">{trail.data.pendingEntries} entries still being sealed.</p> : null}
            <table class="grid compact" aria-label="Ledger entries">
              <thead><tr><th>#</th><th>Recorded</th><th>Event</th><th>Actor</th><th>Hash</th><th>Previous</th></tr></thead>
              <tbody>
                {trail.data.entries.map((e) => (
                  <tr key={e.sequence}>
                    <td>{e.sequence}</td><td>{e.recordedAt?.replace("T", " ").slice(0, 19)}</td><td>{label(e.eventType)}</td>
                    <td>{e.actor}</td><td><code title={e.hash}>{shortHash(e.hash)}</code></td><td><code title={e.prevHash}>{shortHash(e.prevHash)}</code></td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </Panel>
    </>
  );
}

function Verification({ v }: { v: LedgerVerification }) {
  return (
    <div class={`verification ${v.valid ? "ok" : "bad"}`} data-valid={String(v.valid)} role="status">
      <p class="verdict">{v.valid ? "✓ The ledger verifies" : "✗ The ledger does NOT verify"}: {count(v.entriesChecked)} entries checked.</p>
      <KeyValues rows={[
        ["Head hash", <code>{v.headHash ?? "—"}</code>],
        ["Recorded head", v.recordedHead ? `#${v.recordedHead.lastSequence}, ${shortHash(v.recordedHead.headHash)}` : "—"],
        ["Pending entries", count(v.pendingEntries ?? 0)],
        ["Checkpoint", v.checkpoint ? <>{v.checkpoint.status ? <Badge value={v.checkpoint.status} /> : null} {v.checkpoint.treeSize != null ? `tree size ${v.checkpoint.treeSize}` : ""}</> : <span class="muted">not checked against a published checkpoint</span>],
      ]} />
      {v.errors.length ? (
        <ul class="bad-list">{v.errors.map((e, i) => <li key={i}>{typeof e === "string" ? e : `#${e.sequence ?? "?"} ${e.code ?? ""} ${e.message ?? ""}`}</li>)}</ul>
      ) : null}
    </div>
  );
}

function Exports({ id }: { id: string }) {
  const [html, setHtml] = useState<string | null>(null);
  const [objectUrl, setObjectUrl] = useState<string | null>(null);
  useEffect(() => () => { if (objectUrl) URL.revokeObjectURL(objectUrl); }, [objectUrl]);
  const download = useAction(async (format: ExportFormat) => {
    const blob = await api.exportAuditReport(id, format);
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = `audit-${id}.${format}`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });
  const report = useAction(async () => {
    const blob = await api.exportAuditReport(id, "html");
    setHtml(await blob.text());
    setObjectUrl(URL.createObjectURL(blob));
  });
  return (
    <Panel title="Board report and exports" id="exports">
      <div class="commands">
        <button type="button" class="primary" disabled={report.busy} onClick={() => report.run()}>{report.busy ? "Building…" : "Show board report"}</button>
        <button type="button" disabled={download.busy} onClick={() => download.run("csv")}>Download CSV</button>
        <button type="button" disabled={download.busy} onClick={() => download.run("json")}>Download JSON</button>
        {objectUrl ? <a class="button ghost" href={objectUrl} target="_blank" rel="noopener">Open the report in a new tab</a> : null}
      </div>
      <ErrorNote error={report.error ?? download.error} prefix="export_audit_report refused" />
      {html ? <iframe class="report" title="Board report" srcdoc={html} sandbox="allow-same-origin" /> : null}
    </Panel>
  );
}
