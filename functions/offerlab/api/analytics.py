"""Request models of the analytics callables (API.md §3: Analytics, check_guardrails, monitor_experiment)."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from offerlab.api.models import ApiModel, ExperimentRef, Id, UserId
from offerlab.domain.metrics import Metric

# The request body is capped at 256 KiB (config.MAX_REQUEST_BYTES); this bounds each list on its own.
MAX_USER_IDS = 10_000
UserIds = Annotated[list[UserId], Field(max_length=MAX_USER_IDS)]


class AnalyzeExperiment(ApiModel):
    """``treatmentUserIds``/``controlUserIds`` restrict that arm to the listed exposed users of it (each
    listed user must be one); an omitted list means every exposed user of the arm."""

    experiment_id: Id
    metric: Metric
    treatment_user_ids: UserIds | None = None
    control_user_ids: UserIds | None = None


CheckGuardrails = ExperimentRef
MonitorExperiment = ExperimentRef
