"""Which entrypoints module declares each Cloud Function.

Why a catalog: every function instance imports ``main.py``. When the runtime tells us which function
this instance serves (``FUNCTION_TARGET``, set by Cloud Functions and by the emulator), ``main.py``
imports only that function's module, so ``get_offer`` does not pay for the Firestore, Pub/Sub and
Scheduler trigger SDK modules (about 0.4 s more on this machine; benchmarks/bench_coldstart.py).
Deployment and discovery (no target) import every module. tests/unit/test_entrypoint_catalog.py
checks that this table and the modules' ``__all__`` agree.
"""
from __future__ import annotations

AREAS = ("analytics", "experiments", "holdouts", "ledger", "metrics", "money", "offers", "rollouts", "system")

FUNCTIONS: dict[str, tuple[str, ...]] = {
    "analytics": ("analyze_experiment", "check_guardrails", "monitor_experiment", "guardrail_sweep",
                  "kpi_snapshot", "on_guardrail_check", "on_kpi_snapshot", "analyze_holdout", "acknowledge_alert",
                  "aggregate_reconciliation", "on_aggregate_reconciliation"),
    "experiments": ("create_experiment", "update_experiment", "submit_for_approval", "approve_experiment",
                    "reject_experiment", "start_experiment", "pause_experiment", "resume_experiment",
                    "complete_experiment", "kill_experiment", "ship_experiment", "unship_experiment",
                    "get_launch_checklist"),
    "holdouts": ("create_holdout_cohort", "update_holdout_cohort", "freeze_holdout_cohort",
                 "retire_holdout_cohort", "is_user_in_holdout", "check_spillover", "get_holdout_health",
                 "on_holdout_spillover_event"),
    "ledger": ("get_audit_trail", "verify_ledger", "get_audit_report", "get_ledger_statistics",
               "export_audit_report", "get_checkpoint", "get_inclusion_proof", "get_consistency_proof",
               "ledger_on_experiment_event", "ledger_on_rollout_event",
               "ledger_on_analysis", "ledger_on_spillover_event", "ledger_on_experiment_write",
               "ledger_on_cohort_write", "ledger_sweep", "ledger_on_exchange_rates"),
    "metrics": ("ingest_offer_metric_event", "ingest_fraud_signal", "on_experiment_kill_switch"),
    "offers": ("get_offer",),
    "money": ("set_exchange_rates",),
    "rollouts": ("create_rollout_plan", "start_rollout", "check_stage_progress", "progress_rollout",
                 "pause_rollout", "rollback_rollout", "abort_rollout", "rollout_sweep", "on_rollout_check"),
    "system": ("ping",),
}

_AREA_OF = {name: area for area, names in FUNCTIONS.items() for name in names}


def modules_to_load(target: str | None) -> list[str]:
    """The entrypoints modules this instance must import: one when it serves a known target, else all."""
    area = _AREA_OF.get(target or "")
    return [f"offerlab.entrypoints.{a}" for a in ((area,) if area else AREAS)]
