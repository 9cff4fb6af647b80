// Small presentational pieces shared by the screens. They render what they are given; none calls Firebase.
import type { ComponentChildren, JSX } from "preact";
import { useState } from "preact/hooks";

import type { ApiError } from "../api";
import { label } from "../format";

const TONE: Record<string, string> = {
  DRAFT: "grey", PENDING_APPROVAL: "amber", APPROVED: "blue", RUNNING: "green", PAUSED: "amber",
  COMPLETED: "grey", KILLED: "red", SHIP_PENDING_APPROVAL: "amber", SHIPPED: "violet",
  HEALTHY: "green", WARNING: "amber", DEGRADED: "amber", CRITICAL: "red",
  FROZEN: "blue", RETIRED: "grey", PLANNED: "grey", ACTIVE: "green", ABORTED: "red",
  HIGH: "green", MEDIUM: "blue", LOW: "amber", INSUFFICIENT: "grey",
};

export function Badge({ value, tone }: { value: string | null | undefined; tone?: string }) {
  if (!value) return <span class="muted">—</span>;
  return <span class={`badge ${tone ?? TONE[value] ?? "grey"}`}>{label(value)}</span>;
}

export function Panel({ title, id, actions, children }: { title: string; id?: string; actions?: ComponentChildren; children: ComponentChildren }) {
  // Every panel is a named region (its heading), so a person can jump to it and a test can find it.
  const headingId = `${id ?? `panel-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`}-title`;
  return (
    <section class="panel" id={id} aria-labelledby={headingId}>
      <header class="panel-head">
        <h2 id={headingId}>{title}</h2>
        {actions ? <div class="panel-actions">{actions}</div> : null}
      </header>
      {children}
    </section>
  );
}

/** A refusal, as the server worded it, with its code. */
export function ErrorNote({ error, prefix }: { error: ApiError | null | undefined; prefix?: string }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {prefix ? `${prefix}: ` : ""}{error.message} <span class="code">{error.code}</span>
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return <p class="muted" aria-live="polite">Loading {what}…</p>;
}

export function FieldErrors({ id, errors }: { id: string; errors: string[] | undefined }) {
  if (!errors?.length) return null;
  return (
    <ul class="field-errors" id={id} role="alert">
      {errors.map((e) => <li key={e}>{e}</li>)}
    </ul>
  );
}

let seq = 0;
export const uid = (prefix: string) => `${prefix}-${++seq}`;

type InputProps = Omit<JSX.InputHTMLAttributes<HTMLInputElement>, "value" | "onInput"> & { value: string; onValue: (v: string) => void };

/** A labelled input with the server's errors for its field beneath it (aria-describedby). */
export function Field({ label: text, name, errors, hint, children }: { label: string; name: string; errors?: string[]; hint?: string; children: (props: { id: string; "aria-invalid"?: boolean; "aria-describedby"?: string }) => ComponentChildren }) {
  const id = `f-${name.replace(/[^a-zA-Z0-9]+/g, "-")}`;
  const errId = `${id}-errors`;
  const bad = Boolean(errors?.length);
  return (
    <div class={`field${bad ? " invalid" : ""}`} data-field={name}>
      <label for={id}>{text}</label>
      {children({ id, "aria-invalid": bad || undefined, "aria-describedby": bad ? errId : undefined })}
      {hint ? <small class="hint">{hint}</small> : null}
      <FieldErrors id={errId} errors={errors} />
    </div>
  );
}

export function TextInput({ value, onValue, ...rest }: InputProps) {
  return <input {...rest} value={value} onInput={(e) => onValue((e.target as HTMLInputElement).value)} />;
}

export function TextArea({ value, onValue, rows = 3, ...rest }: { value: string; onValue: (v: string) => void; rows?: number } & Omit<JSX.HTMLAttributes<HTMLTextAreaElement>, "value" | "onInput">) {
  return <textarea {...rest} rows={rows} value={value} onInput={(e) => onValue((e.target as HTMLTextAreaElement).value)} />;
}

export function Select<T extends string>({ value, onValue, options, ...rest }: { value: T; onValue: (v: T) => void; options: Array<T | [T, string]> } & Omit<JSX.HTMLAttributes<HTMLSelectElement>, "value" | "onChange">) {
  return (
    <select {...rest} value={value} onChange={(e) => onValue((e.target as HTMLSelectElement).value as T)}>
      {options.map((o) => {
        const [v, text] = Array.isArray(o) ? o : [o, o];
        return <option key={v} value={v}>{text}</option>;
      })}
    </select>
  );
}

/**
 * A command that needs a written reason or comment (pause, kill, reject, rollback, approve…): the button
 * opens a small form; the command runs with what was typed. `required`: the reason may not be blank.
 */
export function ReasonAction({ text, field, required = true, tone = "", busy, onConfirm, placeholder }: {
  text: string; field: string; required?: boolean; tone?: string; busy?: boolean; placeholder?: string;
  onConfirm: (reason: string) => Promise<boolean>;
}) {
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState("");
  const id = `r-${text.replace(/\W+/g, "-").toLowerCase()}`;
  if (!open) return <button type="button" class={tone} onClick={() => setOpen(true)}>{text}…</button>;
  return (
    <form class="reason" onSubmit={async (e) => {
      e.preventDefault();
      if (await onConfirm(reason.trim())) { setOpen(false); setReason(""); }
    }}>
      <label for={id}>{field}</label>
      <textarea id={id} rows={2} value={reason} placeholder={placeholder} required={required} onInput={(e) => setReason((e.target as HTMLTextAreaElement).value)} />
      <div class="row">
        <button type="submit" class={tone || "primary"} disabled={busy}>{busy ? "Working…" : text}</button>
        <button type="button" class="ghost" onClick={() => setOpen(false)}>Cancel</button>
      </div>
    </form>
  );
}

export function KeyValues({ rows }: { rows: Array<[string, ComponentChildren]> }) {
  return (
    <dl class="kv">
      {rows.map(([k, v]) => [<dt key={`${k}-t`}>{k}</dt>, <dd key={`${k}-d`}>{v}</dd>])}
    </dl>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}
