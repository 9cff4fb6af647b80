import * as api from "../api";
import { ITEM_LABELS } from "../checklist";
import { useAsync } from "../hooks";
import type { ChecklistItem } from "../types";
import { ErrorNote, Loading } from "./ui";

/** The server's launch checklist for an experiment (get_launch_checklist: what start_experiment would decide
 * now), refetched when the experiment changes; its warnings (the power plan) below, never blocking. */
export function LaunchChecklist({ experimentId, version }: { experimentId: string; version?: number }) {
  const loaded = useAsync(() => api.getLaunchChecklist(experimentId), [experimentId, version]);
  if (loaded.error) return <ErrorNote error={loaded.error} prefix="get_launch_checklist refused" />;
  if (!loaded.data) return <Loading what="the launch checklist" />;
  return <Checklist items={loaded.data.checklist} warnings={loaded.data.warnings} source="server" />;
}

/** The launch checklist: each item with a tick or a cross and the reason. */
export function Checklist({ items, warnings = [], source }: { items: ChecklistItem[]; warnings?: ChecklistItem[]; source: "server" | "refusal" }) {
  const failing = items.filter((i) => !i.ok).length;
  return (
    <div class="checklist" data-source={source}>
      <p class={failing ? "warn" : "ok"} role="status">
        {failing ? `Cannot start yet: ${failing} of ${items.length} checks fail.` : `All ${items.length} checks pass.`}
        <span class="muted small"> {source === "refusal" ? "From start_experiment's refusal." : "From the server (get_launch_checklist): what start_experiment decides now."}</span>
      </p>
      <ul>
        {items.map((i) => (
          <li key={i.item} class={i.ok ? "ok" : "bad"} data-item={i.item}>
            <span class="mark" aria-hidden="true">{i.ok ? "✓" : "✗"}</span>
            <span class="sr-only">{i.ok ? "passes" : "fails"}: </span>
            <span><strong>{ITEM_LABELS[i.item] ?? i.item}</strong><span class="detail">{i.detail}</span></span>
          </li>
        ))}
      </ul>
      {warnings.length ? (
        <ul class="warnings" aria-label="Warnings (never block the start)">
          {warnings.map((w) => (
            <li key={w.item} class={w.ok ? "ok" : "warn"} data-item={w.item}>
              <span class="mark" aria-hidden="true">{w.ok ? "✓" : "!"}</span>
              <span><strong>{ITEM_LABELS[w.item] ?? w.item}</strong> (warning, never blocks)<span class="detail">{w.detail}</span></span>
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
