"""Spillover isolation, pure: does a benefit passing between two users cross a holdout boundary?

API.md §3 ``check_spillover``: a benefit (referral, gift, shared wallet) passing

* from a user outside a frozen holdout cohort to a user inside it is a violation of that cohort;
* with an experiment, from a TREATMENT user of it to a HOLDOUT or CONTROL user of it is a violation
  of the experiment (the offer reaches, sideways, someone who must not see it).

Each violated cohort's policy for the channel says BLOCK, FLAG or ALLOW (the experiment's policy is
its holdout cohort's). The strictest one wins (BLOCK > FLAG > ALLOW): one cohort that must not be
reached is enough to stop the benefit. A FLAG lets the benefit pass and marks the recipient
contaminated in every violated scope whose own policy is FLAG; a BLOCK stops it, so nobody is
contaminated; an ALLOW policy declares the channel harmless for that cohort (not contaminating).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from offerlab.domain.assignment import Arm, assign_arm
from offerlab.domain.errors import InvalidArgument
from offerlab.domain.holdouts import CohortView
from offerlab.domain.program import ExperimentRule
from offerlab.domain.types import SpilloverAction, SpilloverChannel

SEVERITY = {SpilloverAction.ALLOW: 0, SpilloverAction.FLAG: 1, SpilloverAction.BLOCK: 2}


@dataclass(frozen=True, slots=True)
class ExperimentView:
    """What the arm computation needs of an experiment (API.md §2), and, with ``rule``, the program's
    decision (domain/program.py: its traffic segments and every cohort covering it, API.md §10)."""

    experiment_id: str
    salt: str
    treatment_percentage: float
    coverage: float | None
    holdout: CohortView
    rule: ExperimentRule | None = None

    def arm_of(self, user_id: str) -> Arm:
        if self.rule is not None:
            return self.rule.arm_of(user_id)
        return assign_arm(user_id=user_id, experiment_salt=self.salt,
                          treatment_percentage=self.treatment_percentage, coverage=self.coverage,
                          holdout_salt=self.holdout.salt, holdout_percentage=self.holdout.percentage)


@dataclass(frozen=True, slots=True)
class SpilloverDecision:
    violation: bool
    action: SpilloverAction
    reason: str
    cohort_ids: list[str] = field(default_factory=list)
    """Cohorts whose boundary the benefit crosses (recipient inside, giver outside)."""
    contaminated_cohort_ids: list[str] = field(default_factory=list)
    """Cohorts in which the recipient becomes contaminated (the benefit passes under a FLAG policy)."""
    from_arm: Arm | None = None
    to_arm: Arm | None = None
    experiment_violation: bool = False
    contaminates_experiment: bool = False
    """The recipient (a CONTROL or HOLDOUT user of the experiment) becomes contaminated for it."""


def decide(from_user_id: str, to_user_id: str, channel: SpilloverChannel, cohorts: list[CohortView],
           experiment: ExperimentView | None = None) -> SpilloverDecision:
    """The verdict for one benefit; ``cohorts`` are the frozen (active) cohorts."""
    if from_user_id == to_user_id:
        raise InvalidArgument("A user cannot pass a benefit to themselves.",
                              {"fields": [{"path": "toUserId", "message": "must differ from fromUserId"}]})
    crossed = [(c, c.action_for(channel)) for c in cohorts
               if c.contains(to_user_id) and not c.contains(from_user_id)]
    actions = [a for _, a in crossed]
    reasons = [f"{channel.value} crosses into holdout cohort {c.cohort_id} (policy {a.value})" for c, a in crossed]
    cohort_ids = [c.cohort_id for c, _ in crossed]
    flagged_cohorts = [c.cohort_id for c, a in crossed if a == SpilloverAction.FLAG]

    from_arm = to_arm = None
    experiment_violation = False
    experiment_action = SpilloverAction.ALLOW
    if experiment is not None:
        from_arm, to_arm = experiment.arm_of(from_user_id), experiment.arm_of(to_user_id)
        if from_arm == Arm.TREATMENT and to_arm in (Arm.HOLDOUT, Arm.CONTROL):
            experiment_violation = True
            experiment_action = experiment.holdout.action_for(channel)
            actions.append(experiment_action)
            reasons.append(f"{channel.value} from a TREATMENT user to a {to_arm.value} user of experiment "
                           f"{experiment.experiment_id} (policy {experiment_action.value})")
            if to_arm == Arm.HOLDOUT and experiment.holdout.cohort_id not in cohort_ids \
                    and experiment.holdout.contains(to_user_id):  # (another covering cohort is in ``crossed``)
                cohort_ids.append(experiment.holdout.cohort_id)
                if experiment_action == SpilloverAction.FLAG:
                    flagged_cohorts.append(experiment.holdout.cohort_id)

    if not actions:
        return SpilloverDecision(False, SpilloverAction.ALLOW, "No holdout or experiment boundary is crossed.",
                                 from_arm=from_arm, to_arm=to_arm)
    action = max(actions, key=SEVERITY.__getitem__)
    passes_flagged = action == SpilloverAction.FLAG
    return SpilloverDecision(
        violation=True, action=action, reason="; ".join(reasons) + f" → {action.value}.",
        cohort_ids=cohort_ids,
        contaminated_cohort_ids=flagged_cohorts if passes_flagged else [],
        from_arm=from_arm, to_arm=to_arm, experiment_violation=experiment_violation,
        contaminates_experiment=passes_flagged and experiment_violation and experiment_action == SpilloverAction.FLAG,
    )
