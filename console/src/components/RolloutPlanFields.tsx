// The rollout plan's inputs (create_rollout_plan), used by the editor and the experiment page.
import type { PlanForm } from "../form";
import { Field, FieldErrors, TextInput } from "./ui";

export function RolloutPlanFields({ plan, onChange, errors }: { plan: PlanForm; onChange: (p: PlanForm) => void; errors: Map<string, string[]> }) {
  const set = <K extends keyof PlanForm>(key: K) => (value: PlanForm[K]) => onChange({ ...plan, [key]: value });
  const check = (key: "autoProgress" | "pauseOnViolation" | "rollbackOnFailure", text: string) => (
    <div class="check" data-field={key}>
      <input id={`plan-${key}`} type="checkbox" checked={plan[key]} onChange={(e) => set(key)((e.target as HTMLInputElement).checked)} />
      <label for={`plan-${key}`}>{text}</label>
      <FieldErrors id={`plan-${key}-errors`} errors={errors.get(key)} />
    </div>
  );
  return (
    <div class="plan-fields">
      <FieldErrors id="plan-errors" errors={errors.get("")} />
      <div class="cols">
        <Field label="Stages (% of users, in order)" name="stages" errors={errors.get("stages")} hint="e.g. 1, 5, 10, 25, 50">{(p) => <TextInput {...p} value={plan.stages} onValue={set("stages")} />}</Field>
        <Field label="Minimum hours at each stage" name="minHoursAtStage" errors={errors.get("minHoursAtStage")}>{(p) => <TextInput {...p} inputMode="decimal" value={plan.minHoursAtStage} onValue={set("minHoursAtStage")} />}</Field>
        <Field label="Minimum exposures per arm" name="minExposuresPerArm" errors={errors.get("minExposuresPerArm")}>{(p) => <TextInput {...p} inputMode="numeric" value={plan.minExposuresPerArm} onValue={set("minExposuresPerArm")} />}</Field>
      </div>
      <div class="checks">
        {check("autoProgress", "Progress automatically when a stage meets its requirements")}
        {check("pauseOnViolation", "Pause on a guardrail violation")}
        {check("rollbackOnFailure", "Roll back a stage that fails")}
      </div>
    </div>
  );
}
