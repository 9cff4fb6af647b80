import { ITEM_LABELS } from "../checklist";
import type { ChecklistItem } from "../types";

/** The launch checklist: each item with a tick or a cross and the reason. */
export function Checklist({ items, source }: { items: ChecklistItem[]; source: "server" | "preflight" }) {
  const failing = items.filter((i) => !i.ok).length;
  return (
    <div class="checklist" data-source={source}>
      <p class={failing ? "warn" : "ok"} role="status">
        {failing ? `Cannot start yet: ${failing} of ${items.length} checks fail.` : `All ${items.length} checks pass.`}
        <span class="muted small"> {source === "server" ? "From start_experiment's refusal." : "Pre-flight computed in the console from the stored documents; start_experiment decides."}</span>
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
    </div>
  );
}
