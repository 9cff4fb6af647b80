// The audit: ledger statistics, an experiment's (or a cohort's) ledger trail, verification against the
// published checkpoint, the signed checkpoint and an entry's inclusion proof checked in the browser
// (§12, proofs.ts), the board report (HTML) and the CSV/JSON exports (API.md §4).
import { useEffect, useState } from "preact/hooks";

import * as api from "../api";
import type { Session } from "../api";
import { Empty, ErrorNote, KeyValues, Loading, Panel } from "../components/ui";
import { count, label, shortHash } from "../format";
import { useAction, useAsync } from "../hooks";
import { may } from "../permissions";
import { go, href } from "../router";
import { checkCheckpoint, checkInclusion, type CheckpointCheck, type InclusionCheck } from "../proofs";
import type { Checkpoint, ExportFormat, InclusionProof, LedgerEntry, LedgerVerification } from "../types";

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
  const isExperiment = !id.startsWith("cohort:");
  const entries = trail.data?.entries ?? [];
  return (
    <>
      <Panel title={`Verification${name ? ` of ${name}` : ""}`} id="verify" actions={<button type="button" class="primary" disabled={verify.busy} onClick={() => verify.run()}>{verify.busy ? "Verifying…" : "Verify ledger"}</button>}>
        <ErrorNote error={verify.error} prefix="verify_ledger refused" />
        {verification ? <Verification v={verification} /> : <p class="muted">Re-hash every entry of the chain, rebuild its Merkle tree, and compare both with the recorded head and with the latest checkpoint published outside the database.</p>}
      </Panel>
      <CheckpointPanel id={id} refreshKey={verification} />
      <InclusionPanel id={id} entries={entries} />
      {isExperiment ? <Exports id={id} /> : null}
      <Panel title="Ledger trail" id="trail" actions={<button type="button" class="ghost" onClick={trail.reload} disabled={trail.loading}>Refresh</button>}>
        <ErrorNote error={trail.error} prefix="get_audit_trail refused" />
        {!trail.data ? <Loading what="the trail" /> : !entries.length ? <Empty>No entry sealed yet{trail.data.pendingEntries ? ` (${trail.data.pendingEntries} pending)` : ""}.</Empty> : (
          <>
            {trail.data.pendingEntries ? <p class="muted">{trail.data.pendingEntries} entries still being sealed.</p> : null}
            <table class="grid compact" aria-label="Ledger entries">
              <thead><tr><th>#</th><th>Recorded</th><th>Event</th><th>Actor</th><th>Hash</th><th>Previous</th></tr></thead>
              <tbody>
                {entries.map((e) => (
                  <tr key={e.sequence} data-sequence={e.sequence}>
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

/** The latest signed checkpoint (get_checkpoint), its Ed25519 signature checked here with the verifier key. */
function CheckpointPanel({ id, refreshKey }: { id: string; refreshKey: unknown }) {
  const checkpoint = useAsync<Checkpoint>(() => api.getCheckpoint(id), [id, refreshKey]);
  const cp = checkpoint.data;
  const local = useAsync<CheckpointCheck | null>(() => (cp ? checkCheckpoint(cp.checkpoint, cp.verifierKey) : Promise.resolve(null)), [cp]);
  const c = local.data;
  const bodyAgrees = c?.body != null && cp != null && c.body.treeSize === cp.treeSize && c.body.rootHash === cp.rootHash;
  return (
    <Panel title="Signed checkpoint" id="checkpoint" actions={<button type="button" class="ghost" onClick={checkpoint.reload} disabled={checkpoint.loading}>Refresh</button>}>
      <ErrorNote error={checkpoint.error} prefix="get_checkpoint refused" />
      {!cp ? (!checkpoint.error ? <Loading what="the checkpoint" /> : null) : (
        <>
          {c ? (
            <p class={`verification ${c.signatureValid && bodyAgrees ? "ok" : "bad"}`} data-signature={String(c.signatureValid && bodyAgrees)} role="status">
              <strong>{c.signatureValid && bodyAgrees
                ? `✓ Signature checked in this browser: the checkpoint of ${count(cp.treeSize)} entries is signed by ${c.body?.origin.split("/")[0] ?? "the log"}'s key.`
                : `✗ The checkpoint does NOT check out in this browser: ${c.problem ?? "its body differs from the figures served with it"}.`}</strong>
            </p>
          ) : <Loading what="the signature check" />}
          <KeyValues rows={[
            ["Tree size", count(cp.treeSize)],
            ["Root hash", <code>{cp.rootHash}</code>],
            ["Origin", <code>{cp.origin ?? c?.body?.origin ?? "—"}</code>],
            ["Verifier key", <code class="wrap">{cp.verifierKey}</code>],
            ["Signed note", <pre class="wrap">{cp.checkpoint}</pre>],
          ]} />
          <p class="muted small">Checked with Web Crypto (Ed25519, C2SP signed-note). Compare the verifier key with the one published to the board: a key served by the same server proves only that the server signed it.</p>
        </>
      )}
    </Panel>
  );
}

interface ProofResult { proof: InclusionProof; check: InclusionCheck; checkpoint: CheckpointCheck | null; sequence: number }

/** An inclusion proof of one entry (get_inclusion_proof), recomputed here from the entry's own bytes. */
function InclusionPanel({ id, entries }: { id: string; entries: LedgerEntry[] }) {
  const [sequence, setSequence] = useState<string>("");
  const [result, setResult] = useState<ProofResult | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const chosen = sequence || (entries.length ? String(entries[0].sequence) : "");
  const prove = useAction(async () => {
    setResult(null);
    setProblem(null);
    const seq = Number(chosen);
    const entry = entries.find((e) => e.sequence === seq);
    if (!entry?.canonical) { setProblem("This entry was sealed without its canonical bytes; its proof cannot be recomputed here."); return; }
    const [proof, cp] = await Promise.all([api.getInclusionProof(id, seq), api.getCheckpoint(id)]);
    // The root to reach: the signed checkpoint the proof was made for (its note), checked with the log's key.
    const noteText = proof.checkpoint ?? (cp.treeSize === proof.treeSize ? cp.checkpoint : null);
    const checkpoint = noteText ? await checkCheckpoint(noteText, cp.verifierKey) : null;
    const expectedRoot = checkpoint?.body?.treeSize === proof.treeSize ? checkpoint.body.rootHash : "";
    setResult({ proof, checkpoint, sequence: seq, check: await checkInclusion(entry.canonical, proof, expectedRoot) });
  });
  const r = result;
  const included = r ? r.check.leafMatches && r.check.rootMatches && Boolean(r.checkpoint?.signatureValid) : false;
  return (
    <Panel title="Inclusion proof" id="inclusion">
      <p class="muted">Proves that one entry is in the signed tree without reading the others: the browser hashes the entry's bytes (RFC 9162: SHA-256(0x00 ‖ bytes)), climbs the proof's {r ? r.proof.proof.length : "log₂ n"} sibling hashes to a root, and compares it with the signed checkpoint's root.</p>
      <form class="row" onSubmit={(ev) => { ev.preventDefault(); prove.run(); }} aria-label="Prove an entry's inclusion">
        <label for="proof-entry" class="inline">Entry to prove</label>
        <select id="proof-entry" value={chosen} onChange={(ev) => setSequence((ev.target as HTMLSelectElement).value)} disabled={!entries.length}>
          {entries.map((e) => <option key={e.sequence} value={String(e.sequence)}>#{e.sequence} {label(e.eventType)}</option>)}
        </select>
        <button type="submit" disabled={prove.busy || !entries.length}>{prove.busy ? "Proving…" : "Prove inclusion"}</button>
      </form>
      <ErrorNote error={prove.error} prefix="get_inclusion_proof refused" />
      {problem ? <p class="warning">{problem}</p> : null}
      {r ? (
        <div class={`verification ${included ? "ok" : "bad"}`} data-included={String(included)} role="status">
          <p class="verdict">{included
            ? `✓ Entry #${r.sequence} is in the signed tree of ${count(r.proof.treeSize)} entries.`
            : `✗ Entry #${r.sequence} is NOT proven to be in the signed tree.`}</p>
          <KeyValues rows={[
            ["Leaf index / tree size", `${r.proof.leafIndex} / ${count(r.proof.treeSize)}`],
            ["Leaf hash", <><code>{r.proof.leafHash}</code> {r.check.leafMatches ? <span class="ok">= SHA-256(0x00 ‖ the entry's bytes)</span> : <strong class="bad">≠ SHA-256(0x00 ‖ the entry's bytes)</strong>}</>],
            ["Proof", r.proof.proof.length ? <ol class="hashes">{r.proof.proof.map((h, i) => <li key={i}><code>{h}</code></li>)}</ol> : <span class="muted">none (a one-entry tree)</span>],
            ["Root recomputed here", <code>{r.check.computedRoot ?? "— (malformed proof)"}</code>],
            ["Signed checkpoint's root", r.checkpoint?.body ? <><code>{r.checkpoint.body.rootHash}</code> {r.check.rootMatches ? <span class="ok">matches</span> : <strong class="bad">differs</strong>}</> : <span class="muted">no checkpoint for this tree size</span>],
            ["Checkpoint signature", r.checkpoint ? (r.checkpoint.signatureValid ? <span class="ok">verified in this browser</span> : <strong class="bad">{r.checkpoint.problem}</strong>) : "—"],
          ]} />
        </div>
      ) : null}
    </Panel>
  );
}

function Verification({ v }: { v: LedgerVerification }) {
  const cp = v.checkpoint;
  const sameTree = cp != null && v.treeSize === cp.treeSize && v.rootHash === cp.rootHash;
  return (
    <div class={`verification ${v.valid ? "ok" : "bad"}`} data-valid={String(v.valid)} role="status">
      <p class="verdict">{v.valid ? "✓ The ledger verifies" : "✗ The ledger does NOT verify"}: {count(v.entriesChecked)} entries checked.</p>
      <KeyValues rows={[
        ["Head hash", <code>{v.headHash ?? "—"}</code>],
        ["Recorded head", v.recordedHead ? `#${v.recordedHead.lastSequence}, ${shortHash(v.recordedHead.headHash)}` : "—"],
        ["Merkle tree of the entries", v.treeSize != null ? <>{count(v.treeSize)} leaves, root <code>{v.rootHash || "—"}</code></> : "—"],
        ["Pending entries", count(v.pendingEntries ?? 0)],
        ["Published checkpoint", cp
          ? <span data-checkpoint-line>checked against the checkpoint published at tree size {count(cp.treeSize)}, root <code>{cp.rootHash}</code>: {cp.signatureVerified ? <strong class="ok">signature verified</strong> : <strong class="bad">signature NOT verified</strong>}{sameTree ? " · the entries reproduce its root" : cp.treeSize < (v.treeSize ?? 0) ? " · the tree has grown since; its first entries reproduce that root" : ""}</span>
          : <span class="muted" data-checkpoint-line>no checkpoint published yet</span>],
      ]} />
      {v.errors.length ? (
        <ul class="bad-list">{v.errors.map((e, i) => <li key={i}>{typeof e === "string" ? e : `${e.sequence != null ? `#${e.sequence} ` : ""}${e.code ?? ""} ${e.message ?? ""}`}</li>)}</ul>
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
