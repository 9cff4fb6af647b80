// Pure formatting helpers: what a person reads. No Firebase here (api.ts is the only module that knows it).

/** A Firestore Timestamp (lite SDK: has toDate()), an RFC 3339 string, or epoch millis, as a Date. */
export function toDate(value: unknown): Date | null {
  if (value == null) return null;
  if (value instanceof Date) return value;
  if (typeof (value as { toDate?: unknown }).toDate === "function") return (value as { toDate: () => Date }).toDate();
  if (typeof value === "string" || typeof value === "number") {
    const d = new Date(value);
    return Number.isNaN(d.getTime()) ? null : d;
  }
  const seconds = (value as { seconds?: number; _seconds?: number }).seconds ?? (value as { _seconds?: number })._seconds;
  return typeof seconds === "number" ? new Date(seconds * 1000) : null;
}

export function when(value: unknown): string {
  const d = toDate(value);
  if (!d) return "—";
  return d.toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

export function day(value: unknown): string {
  const d = toDate(value);
  return d ? d.toISOString().slice(0, 10) : "—";
}

export function num(value: number | null | undefined, digits = 2): string {
  if (value == null || !Number.isFinite(value)) return "—";
  return Math.abs(value) >= 1000 ? Math.round(value).toLocaleString("en-US") : String(Number(value.toFixed(digits)));
}

export function pct(value: number | null | undefined, digits = 1, signed = false): string {
  if (value == null || !Number.isFinite(value)) return "—";
  const s = value.toFixed(digits);
  return `${signed && value > 0 ? "+" : ""}${s} %`;
}

export function pValue(value: number | null | undefined): string {
  if (value == null || !Number.isFinite(value)) return "—";
  if (value < 0.0001) return "< 0.0001";
  return value.toFixed(4);
}

export function interval(ci: [number | null, number | null] | null | undefined, digits = 1): string {
  if (!ci || ci[0] == null || ci[1] == null) return "—";
  return `[${pct(ci[0], digits, true)}, ${pct(ci[1], digits, true)}]`;
}

export function count(value: number | null | undefined): string {
  return value == null ? "—" : value.toLocaleString("en-US");
}

/** "PENDING_APPROVAL" → "Pending approval". */
export function label(value: string | null | undefined): string {
  if (!value) return "—";
  const s = value.replace(/_/g, " ").toLowerCase();
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function shortHash(hash: string | null | undefined): string {
  return hash ? `${hash.slice(0, 12)}…` : "—";
}

/**
 * A guardrail figure in its unit (monitor_experiment's `unit`, API.md §11): a value of the metric, a
 * relative change in percent (relative guardrails), or a relative change as a fraction (GUARDRAIL KPIs).
 */
export function guardValue(g: { unit?: string }, value: number | null | undefined): string {
  if (value == null || !Number.isFinite(value)) return "—";
  if (g.unit === "percent") return pct(value, 2, true);
  if (g.unit === "fraction") return pct(value * 100, 2, true);
  return num(value, 4);
}
