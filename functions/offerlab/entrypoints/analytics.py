"""Analytics and guardrail functions (docs/analytics.md).

Callables: analyze_experiment, check_guardrails, monitor_experiment. Scheduled (API.md §6):
guardrail_sweep every 5 minutes (fans out one message per RUNNING experiment to ``guardrail-checks``) and
kpi_snapshot hourly (fans out one message per RUNNING or PAUSED experiment to ``kpi-snapshots``); both take
*now* from ``event.schedule_time`` (the X-CloudScheduler-ScheduleTime header) and are harmless to run at
any time (idempotent per tick). Pub/Sub: on_guardrail_check, on_kpi_snapshot.

Services are imported inside the functions: numpy/scipy stay off every other function's cold start.

Memory and timeouts fit the work (API.md §11): the monitors, the sweep's per-experiment check and the
snapshot read the experiment and at most 3 × SHARDS aggregate shards (256 MiB, 60 s is ample whatever the
population); analyze_experiment and the reconciliation page through every user with bounded memory (one
page, the running sums and the cap's histogram: 512 MiB) for as long as 1M users take (540 s, the maximum
of an event-driven or callable function's default tier).
"""
from __future__ import annotations

__all__ = ["analyze_experiment", "check_guardrails", "monitor_experiment", "guardrail_sweep", "kpi_snapshot",
           "on_guardrail_check", "on_kpi_snapshot", "analyze_holdout", "acknowledge_alert",
           "aggregate_reconciliation", "on_aggregate_reconciliation"]

import logging
from typing import Any

from firebase_functions import https_fn, pubsub_fn, scheduler_fn

from offerlab.api import analytics as m
from offerlab.api import holdouts as hm
from offerlab.domain.actors import Role
from offerlab.api.callable import handle
from offerlab.api.delivery import PoisonMessage, deliver
from offerlab.store.firestore_store import firestore_store as store

log = logging.getLogger("offerlab.analytics")

GUARDRAIL_TOPIC = "guardrail-checks"  # = service.sweeps.GUARDRAIL_TOPIC (not imported: cold start)
SNAPSHOT_TOPIC = "kpi-snapshots"      # = service.snapshots.SNAPSHOT_TOPIC


@https_fn.on_call(memory=512, timeout_sec=540)
def analyze_experiment(req: https_fn.CallableRequest) -> dict:
    """Experimenters (their own experiments), analysts and admins; each call stores a NEW analysis."""
    def action(caller, p: m.AnalyzeExperiment):
        from offerlab.service import analytics as svc  # noqa: PLC0415

        return svc.analyze_experiment(store(), caller, p.experiment_id, p.metric, p.treatment_user_ids, p.control_user_ids)

    return handle(req, m.AnalyzeExperiment, action, roles=[Role.EXPERIMENTER, Role.ANALYST])


@https_fn.on_call(memory=256, timeout_sec=60)
def check_guardrails(req: https_fn.CallableRequest) -> dict:
    """The author or an admin acts on violations; other experimenters and analysts get a dry run."""
    def action(caller, p: m.CheckGuardrails):
        from offerlab.service import guardrails as svc  # noqa: PLC0415

        return svc.check_guardrails(store(), caller, p.experiment_id)

    return handle(req, m.CheckGuardrails, action, roles=[Role.EXPERIMENTER, Role.ANALYST])


@https_fn.on_call(memory=256, timeout_sec=60)
def monitor_experiment(req: https_fn.CallableRequest) -> dict:
    def action(caller, p: m.MonitorExperiment):
        from offerlab.service import guardrails as svc  # noqa: PLC0415

        return svc.monitor_experiment(store(), caller, p.experiment_id)

    return handle(req, m.MonitorExperiment, action, roles=[Role.EXPERIMENTER, Role.ANALYST])


@scheduler_fn.on_schedule(schedule="every 5 minutes", memory=256, timeout_sec=60)
def guardrail_sweep(event: scheduler_fn.ScheduledEvent) -> None:
    from offerlab.service import sweeps  # noqa: PLC0415

    published = sweeps.guardrail_sweep(store(), event.schedule_time)
    log.info("guardrail sweep %s: %d checks published", event.schedule_time.isoformat(), published)


@scheduler_fn.on_schedule(schedule="every 60 minutes", memory=256, timeout_sec=60)
def kpi_snapshot(event: scheduler_fn.ScheduledEvent) -> None:
    from offerlab.service import snapshots  # noqa: PLC0415

    published = snapshots.kpi_snapshot(store(), event.schedule_time)
    log.info("kpi snapshot %s: %d requests published", event.schedule_time.isoformat(), published)


@pubsub_fn.on_message_published(topic=SNAPSHOT_TOPIC, retry=True, memory=256, timeout_sec=60)
def on_kpi_snapshot(event: pubsub_fn.CloudEvent[pubsub_fn.MessagePublishedData]) -> None:
    """One experiment's snapshot for one tick, written once. Delivery policy: api/delivery.py."""
    from offerlab.service import snapshots  # noqa: PLC0415

    def work(data: Any, message_id: str) -> None:
        try:
            outcome = snapshots.handle_snapshot_request(store(), data)
        except ValueError as err:
            raise PoisonMessage(str(err)[:300]) from None
        log.info("kpi snapshot %s: %s", message_id, outcome)

    deliver("kpi snapshot request", event, work)


@pubsub_fn.on_message_published(topic=GUARDRAIL_TOPIC, retry=True, memory=256, timeout_sec=60)
def on_guardrail_check(event: pubsub_fn.CloudEvent[pubsub_fn.MessagePublishedData]) -> None:
    """One experiment's check, idempotent per (experiment, tick). Delivery policy: api/delivery.py."""
    from offerlab.service import sweeps  # noqa: PLC0415

    def work(data: Any, message_id: str) -> None:
        outcome = sweeps.handle_guardrail_check(store(), data)
        log.info("guardrail check %s: %s %s %s", message_id, outcome.status, outcome.action, outcome.reason)

    deliver("guardrail check", event, work)


@https_fn.on_call(memory=1024, timeout_sec=540)
def analyze_holdout(req: https_fn.CallableRequest) -> dict:
    """API.md §10: a holdout cohort's read-out; experimenters, analysts and admins; each call stores a NEW one."""
    def action(caller, p):
        from offerlab.service import holdout_analysis as svc  # noqa: PLC0415

        return svc.analyze_holdout(store(), caller, p.cohort_id, p.metric)

    return handle(req, hm.AnalyzeHoldout, action, roles=[Role.EXPERIMENTER, Role.ANALYST])
@https_fn.on_call(memory=256, timeout_sec=60)
def acknowledge_alert(req: https_fn.CallableRequest) -> dict:
    """The experiment's author or an admin (API.md §11); ledgered through the experiment's write path."""
    from offerlab.api.experiments import AcknowledgeAlert  # noqa: PLC0415
    from offerlab.service import alerts as svc  # noqa: PLC0415

    def action(caller, p: AcknowledgeAlert):
        return svc.acknowledge_alert(store(), caller, p.experiment_id, p.alert_id, p.comment)

    return handle(req, AcknowledgeAlert, action, roles=[Role.EXPERIMENTER])


RECONCILIATION_TOPIC = "aggregate-reconciliations"  # = service.reconciliation.TOPIC


@scheduler_fn.on_schedule(schedule="every day 03:30", memory=256, timeout_sec=60)
def aggregate_reconciliation(event: scheduler_fn.ScheduledEvent) -> None:
    """Daily: fan out a sample of running experiments to on_aggregate_reconciliation."""
    from offerlab.service import reconciliation  # noqa: PLC0415

    published = reconciliation.aggregate_reconciliation(store(), event.schedule_time)
    log.info("aggregate reconciliation %s: %d checks published", event.schedule_time.isoformat(), published)


@pubsub_fn.on_message_published(topic=RECONCILIATION_TOPIC, retry=True, memory=512, timeout_sec=540)
def on_aggregate_reconciliation(event: pubsub_fn.CloudEvent[pubsub_fn.MessagePublishedData]) -> None:
    """One experiment recomputed from its users (paged) and compared with its shards; drift raises an alert."""
    from offerlab.service import reconciliation  # noqa: PLC0415

    def work(data: Any, message_id: str) -> None:
        try:
            result = reconciliation.handle_reconciliation_request(store(), data)
        except ValueError as err:
            raise PoisonMessage(str(err)[:300]) from None
        log.info("aggregate reconciliation %s: %s", message_id, result.verdict.value)

    deliver("aggregate reconciliation", event, work)
