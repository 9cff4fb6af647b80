// Inline SVG charts for what people would rather look at than read: exposures per arm, guardrails
// against their thresholds, the rollout's stages, and analysis intervals. Each has a text equivalent
// (aria-label, and the tables beside it), and renders only the figures it is given.
import { count, guardValue, pct } from "../format";
import type { Analysis, GuardrailState, HoldoutAnalysis, RolloutStage } from "../types";

const ARM_COLOUR: Record<string, string> = { CONTROL: "#4c78a8", TREATMENT: "#f58518", HOLDOUT: "#8c8c8c" };

export function ExposureBars({ exposures, treatmentPercentage }: { exposures: Record<string, number>; treatmentPercentage: number }) {
  const arms = ["CONTROL", "TREATMENT", "HOLDOUT"];
  const max = Math.max(1, ...arms.map((a) => exposures[a] ?? 0));
  const width = 460, row = 34, left = 96, right = 70;
  const enrolled = (exposures.CONTROL ?? 0) + (exposures.TREATMENT ?? 0);
  const described = arms.map((a) => `${a} ${exposures[a] ?? 0}`).join(", ");
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${row * arms.length + 26}`} role="img" aria-label={`Exposures per arm: ${described}`}>
        {arms.map((arm, i) => {
          const value = exposures[arm] ?? 0;
          const w = ((width - left - right) * value) / max;
          const y = i * row + 6;
          return (
            <g key={arm}>
              <text x={left - 8} y={y + 17} text-anchor="end" class="axis-label">{arm}</text>
              <rect x={left} y={y} width={Math.max(w, value ? 2 : 0)} height={22} rx={3} fill={ARM_COLOUR[arm]} />
              <text x={left + w + 6} y={y + 16} class="value-label">{count(value)}</text>
            </g>
          );
        })}
        <text x={left} y={row * arms.length + 20} class="note">
          {enrolled ? `treatment share ${pct((100 * (exposures.TREATMENT ?? 0)) / enrolled)} of enrolled (planned ${pct(treatmentPercentage, 0)})` : "no exposures yet"}
        </text>
      </svg>
    </figure>
  );
}

/** Each guardrail: the observed value (dot), its confidence bound (bar), the threshold (red line). */
export function GuardrailBars({ guardrails }: { guardrails: GuardrailState[] }) {
  if (!guardrails.length) return null;
  const width = 560, row = 44, left = 170, right = 24;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${row * guardrails.length + 8}`} role="img"
        aria-label={`Guardrails against thresholds: ${guardrails.map((g) => `${g.kpiName} observed ${guardValue(g, g.observed)} threshold ${guardValue(g, g.threshold)}${g.breached ? " breached" : ""}`).join("; ")}`}>
        {guardrails.map((g, i) => {
          const values = [g.observed, g.threshold, g.confidenceBound, 0].filter((v): v is number => v != null && Number.isFinite(v));
          const lo = Math.min(...values), hi = Math.max(...values);
          const span = hi - lo || Math.abs(hi) || 1;
          const x = (v: number) => left + ((v - (lo - span * 0.15)) / (span * 1.3)) * (width - left - right);
          const y = i * row + 8;
          const colour = g.breached ? "#c0392b" : g.pointBeyondThreshold ? "#d68910" : "#2e8540";
          return (
            <g key={`${g.kpiName}-${i}`}>
              <text x={8} y={y + 14} class="axis-label">{g.kpiName}</text>
              <text x={8} y={y + 30} class="note">{g.metric} · {g.direction === "min" ? "min" : "max"} {guardValue(g, g.threshold)}</text>
              <line x1={left} x2={width - right} y1={y + 18} y2={y + 18} class="track" />
              {g.observed != null && g.confidenceBound != null
                ? <line x1={x(Math.min(g.observed, g.confidenceBound))} x2={x(Math.max(g.observed, g.confidenceBound))} y1={y + 18} y2={y + 18} stroke={colour} stroke-width={6} stroke-opacity={0.35} />
                : null}
              {g.threshold != null && g.observed != null ? <line x1={x(g.threshold)} x2={x(g.threshold)} y1={y + 4} y2={y + 32} stroke="#c0392b" stroke-width={2} /> : null}
              {g.observed != null ? <circle cx={x(g.observed)} cy={y + 18} r={6} fill={colour} /> : <text x={left + 4} y={y + 22} class="note">no data yet</text>}
            </g>
          );
        })}
      </svg>
    </figure>
  );
}

/** The plan's stages as steps: done, current, to come. */
export function StageTrack({ stages, current, started }: { stages: RolloutStage[]; current: number | null; started: boolean }) {
  const width = 560, step = (width - 40) / Math.max(1, stages.length - 1 || 1);
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} 64`} role="img"
        aria-label={`Rollout stages ${stages.map((s) => `${s.percentage}%`).join(", ")}; ${started && current != null ? `now at ${stages[current]?.percentage}%` : "not started"}`}>
        <line x1={20} x2={20 + step * (stages.length - 1)} y1={24} y2={24} class="track" />
        {stages.map((s, i) => {
          const cx = stages.length === 1 ? width / 2 : 20 + step * i;
          const state = !started || current == null ? "todo" : i < current ? "done" : i === current ? "now" : "todo";
          return (
            <g key={i}>
              <circle cx={cx} cy={24} r={state === "now" ? 11 : 8} class={`stage ${state}`} />
              <text x={cx} y={54} text-anchor="middle" class={state === "now" ? "value-label strong" : "axis-label"}>{s.percentage} %</text>
            </g>
          );
        })}
      </svg>
    </figure>
  );
}

/** The holdout read-out: the cumulative lift with its interval, and each shipped experiment's own lift
 *  (hollow) with where shrinkage puts it (filled), against zero. */
export function ReadoutChart({ readout: r, names }: { readout: HoldoutAnalysis; names: Record<string, string> }) {
  const rows: Array<{ name: string; point: number | null; ci?: [number | null, number | null] | null; shrunk?: number | null }> = [
    { name: "Everything shipped", point: r.liftPercent, ci: r.confidenceInterval },
    ...r.shippedExperiments.map((x) => ({
      name: names[x.experimentId] ?? x.experimentId, point: x.experimentLiftPercent, shrunk: x.shrunkLiftPercent,
      // Its own 95 % interval, from the standard error the read-out reports.
      ci: x.experimentLiftPercent != null && x.experimentLiftSePercent != null
        ? [x.experimentLiftPercent - 1.96 * x.experimentLiftSePercent, x.experimentLiftPercent + 1.96 * x.experimentLiftSePercent] as [number, number] : null,
    })),
  ];
  const values = rows.flatMap((x) => [x.point, x.shrunk, ...(x.ci ?? [])]).filter((v): v is number => v != null && Number.isFinite(v));
  if (!values.length) return null;
  const lo = Math.min(0, ...values), hi = Math.max(0, ...values);
  const span = hi - lo || 1;
  const width = 600, row = 34, left = 200, right = 60;
  const x = (v: number) => left + ((v - (lo - span * 0.1)) / (span * 1.2)) * (width - left - right);
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${row * rows.length + 30}`} role="img"
        aria-label={`Holdout read-out: ${rows.map((x) => `${x.name} ${pct(x.point, 1, true)}${x.shrunk != null ? ` shrunk ${pct(x.shrunk, 1, true)}` : ""}`).join("; ")}`}>
        <line x1={x(0)} x2={x(0)} y1={0} y2={row * rows.length + 4} class="zero" />
        <text x={x(0)} y={row * rows.length + 20} text-anchor="middle" class="note">0 %</text>
        {rows.map((item, i) => {
          const y = i * row + 18;
          const name = item.name.length > 28 ? `${item.name.slice(0, 27)}…` : item.name;
          return (
            <g key={i}>
              <text x={8} y={y + 4} class={i === 0 ? "axis-label strong" : "axis-label"}>{name}</text>
              {item.ci && item.ci[0] != null && item.ci[1] != null ? <line x1={x(item.ci[0])} x2={x(item.ci[1])} y1={y} y2={y} stroke={i === 0 ? "#5b3aa0" : "#f58518"} stroke-width={i === 0 ? 6 : 3} stroke-linecap="round" stroke-opacity={0.45} /> : null}
              {item.shrunk != null && item.point != null ? <line x1={x(item.point)} x2={x(item.shrunk)} y1={y} y2={y} stroke="#8c8c8c" stroke-dasharray="2 2" /> : null}
              {item.point != null ? <circle cx={x(item.point)} cy={y} r={5} fill={i === 0 ? "#5b3aa0" : "white"} stroke={i === 0 ? "#5b3aa0" : "#f58518"} stroke-width={2} /> : null}
              {item.shrunk != null ? <circle cx={x(item.shrunk)} cy={y} r={5} fill="#f58518" /> : null}
              <text x={width - right + 6} y={y + 4} class="value-label">{pct(item.shrunk ?? item.point, 1, true)}</text>
            </g>
          );
        })}
      </svg>
      <figcaption>Purple: the holdout's measured cumulative lift and its interval. Orange: each shipped experiment's own estimate (hollow) with its 95 % interval, and its shrunk lift (filled).</figcaption>
    </figure>
  );
}

/** Analyses in time order: corrected change with its interval (bar), the raw change (hollow dot), zero. */
export function IntervalChart({ analyses }: { analyses: Analysis[] }) {
  const rows = analyses.filter((a) => a.correctedPercentChange != null || a.rawPercentChange != null);
  if (!rows.length) return null;
  const values = rows.flatMap((a) => [a.correctedPercentChange, a.rawPercentChange, ...(a.confidenceInterval ?? []), ...(a.sequential?.confidenceInterval ?? [])]).filter((v): v is number => v != null && Number.isFinite(v));
  const lo = Math.min(0, ...values), hi = Math.max(0, ...values);
  const span = hi - lo || 1;
  const width = 560, row = 36, left = 150, right = 20;
  const x = (v: number) => left + ((v - (lo - span * 0.1)) / (span * 1.2)) * (width - left - right);
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${row * rows.length + 30}`} role="img"
        aria-label={`Analyses: ${rows.map((a) => `${a.metric} corrected ${pct(a.correctedPercentChange, 1, true)}`).join("; ")}`}>
        <line x1={x(0)} x2={x(0)} y1={0} y2={row * rows.length + 4} class="zero" />
        <text x={x(0)} y={row * rows.length + 20} text-anchor="middle" class="note">0 %</text>
        {rows.map((a, i) => {
          const y = i * row + 16;
          const ci = a.confidenceInterval;
          const av = a.sequential?.confidenceInterval;
          return (
            <g key={a.analysisId}>
              {av && av[0] != null && av[1] != null ? <line x1={x(av[0])} x2={x(av[1])} y1={y} y2={y} stroke="#1f4e79" stroke-width={1.5} /> : null}
              {av && av[0] != null && av[1] != null ? <><line x1={x(av[0])} x2={x(av[0])} y1={y - 6} y2={y + 6} stroke="#1f4e79" stroke-width={1.5} /><line x1={x(av[1])} x2={x(av[1])} y1={y - 6} y2={y + 6} stroke="#1f4e79" stroke-width={1.5} /></> : null}
              <text x={8} y={y + 4} class="axis-label">#{i + 1} {a.metric}</text>
              <text x={8} y={y + 15} class="note">n {count((a.sampleSizes?.CONTROL ?? 0) + (a.sampleSizes?.TREATMENT ?? 0))}</text>
              {ci && ci[0] != null && ci[1] != null ? <line x1={x(ci[0])} x2={x(ci[1])} y1={y} y2={y} stroke="#4c78a8" stroke-width={6} stroke-linecap="round" stroke-opacity={0.5} /> : null}
              {a.rawPercentChange != null ? <circle cx={x(a.rawPercentChange)} cy={y} r={5} fill="white" stroke="#8c8c8c" stroke-width={2} /> : null}
              {a.correctedPercentChange != null ? <circle cx={x(a.correctedPercentChange)} cy={y} r={5} fill="#1f4e79" /> : null}
            </g>
          );
        })}
      </svg>
      <figcaption>Filled dot: corrected change; thick bar: its fixed-horizon interval; thin bracket: the always-valid interval; hollow dot: raw change.</figcaption>
    </figure>
  );
}
