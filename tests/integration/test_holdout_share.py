"""Issue 4 "Done when", over the deployed callables on the emulators:

* the observed holdout share of 20,000 synthetic users is within sampling error of the configured share
  (the pure assignment function, which the service uses, over all 20,000; a few hundred of them through
  the real ``is_user_in_holdout`` callable, whose answers must equal the hash recomputed here, and
  whose recorded assignments the health report counts);
* the same users get the same answer after an instance restart (a fresh process: this test's own
  service layer, with a cold cache, and the published formula) and after cohort edits are refused.
"""
import math
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from offerlab.domain.actors import Caller, Role
from offerlab.domain.assignment import bucket_of, threshold
from offerlab.service import holdouts as svc
from offerlab.store import cohort_cache
from offerlab.store.firestore_store import firestore_store
from offerlab_client import FailedPrecondition, OfferlabClient

STORE = firestore_store()  # the store the functions use, on the emulator

PERCENTAGE = 10.0
SYNTHETIC_USERS = 20_000
CALLED_USERS = 400  # through the callable, 8 at a time (keeps the emulator work small)


@pytest.fixture(scope="module")
def cohort(clients):
    pm = clients.experimenter()
    draft = pm.create_holdout_cohort(name=f"share {uuid.uuid4().hex[:6]}", percentage=PERCENTAGE,
                                     description="done-when")
    frozen = pm.freeze_holdout_cohort(draft["cohortId"])
    # Warm instances of is_user_in_holdout refresh their cohort list within the cache TTL
    # (docs/holdouts.md): after it, every instance counts the new cohort.
    time.sleep(cohort_cache.COHORT_TTL_SECONDS + 1)
    return frozen


@pytest.fixture(scope="module")
def users():
    tag = uuid.uuid4().hex[:8]
    return [f"synthetic-{tag}-{i}" for i in range(SYNTHETIC_USERS)]


def ask_all(clients, user_ids):
    """is_user_in_holdout for each user over HTTP, 8 at a time. A request the emulator drops (it
    restarts workers when files of the shared tree change) is asked again: the question is idempotent,
    and the answers are still all checked."""
    service = clients.service()

    def ask(user_id):
        for attempt in range(3):
            try:  # a client per call: a requests.Session is not shared across threads
                return OfferlabClient(service.base_url, service.token, timeout=20).is_user_in_holdout(user_id)
            except requests.RequestException:
                if attempt == 2:
                    raise
                time.sleep(2)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(ask, user_ids))


def expected_in(cohort, user_id):
    return bucket_of(cohort["salt"], user_id) < threshold(cohort["percentage"])


def within_sampling_error(observed, expected, n, sigmas=4.0):
    return abs(observed - expected) < sigmas * math.sqrt(expected * (1 - expected) / n)


def test_observed_share_of_20000_synthetic_users_is_within_sampling_error(cohort, users):
    inside = sum(expected_in(cohort, u) for u in users)
    assert within_sampling_error(inside / len(users), PERCENTAGE / 100, len(users)), inside


def test_callable_answers_equal_the_hash_and_the_health_report_counts_them(clients, cohort, users):
    sample = users[:CALLED_USERS]
    answers = ask_all(clients, sample)
    for user_id, answer in zip(sample, answers):
        assert answer["userId"] == user_id
        assert (cohort["cohortId"] in answer["cohortIds"]) == expected_in(cohort, user_id)
        assert answer["inHoldout"] == bool(answer["cohortIds"])
    health = clients.analyst().get_holdout_health(cohort["cohortId"])
    inside = sum(expected_in(cohort, u) for u in sample)
    assert health["evaluatedUsers"] >= CALLED_USERS and health["assignedUsers"] >= inside
    assert health["expectedShare"] == PERCENTAGE / 100 and health["frozen"] is True
    assert within_sampling_error(health["observedShare"], PERCENTAGE / 100, health["evaluatedUsers"])
    assert health["srmPValue"] > 0.001 and not any("Sample-ratio" in i for i in health["issues"])


def test_same_answers_after_a_restart_and_after_refused_edits(clients, cohort, users):
    pm = clients.experimenter()
    with pytest.raises(FailedPrecondition):
        pm.update_holdout_cohort(cohort["cohortId"], percentage=40)
    with pytest.raises(FailedPrecondition):
        pm.freeze_holdout_cohort(cohort["cohortId"])
    sample = users[:200]
    over_http = [cohort["cohortId"] in a["cohortIds"] for a in ask_all(clients, sample)]
    # A "restarted instance": this process's own service layer, with a cold cache and an empty LRU.
    cohort_cache.invalidate()
    fresh = Caller("backend", None, frozenset({Role.SERVICE}))
    restarted = [cohort["cohortId"] in svc.is_user_in_holdout(STORE, fresh, u)["cohortIds"] for u in sample]
    recomputed = [expected_in(cohort, u) for u in sample]
    assert over_http == restarted == recomputed
