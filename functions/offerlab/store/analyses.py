"""Repositories the analytics area reads and writes.

* experimentAnalyses/{analysisId}: created once (``transaction.create``), never updated; rules deny clients.
* Read helpers of the Firestore ``AnalysisSource`` (service/analysis_source.py): exposures and per-user
  totals of one experiment streamed as plain dicts (no per-user model validation: 100k users), the users
  whose fraud score passes a threshold (one range query), and the experiment's spillover-contaminated users.
* experimentAlerts/{alertId}: guardrail alerts (the collection the ledger also uses for unauthorised
  changes; ``type`` tells them apart).
"""
from __future__ import annotations

from typing import Any, Iterator

from offerlab.store import collections as C
from offerlab.store.client import db
from offerlab.store.documents import ExperimentAnalysis

def new_analysis_ref():
    return db().collection(C.EXPERIMENT_ANALYSES).document()


def analysis_ref(analysis_id: str):
    return db().collection(C.EXPERIMENT_ANALYSES).document(analysis_id)


def create_analysis(transaction: Any, ref: Any, analysis: ExperimentAnalysis) -> None:
    """``create``: the commit fails if the id exists, so an analysis is never overwritten."""
    transaction.create(ref, analysis.to_firestore())


def get_analysis(analysis_id: str) -> ExperimentAnalysis | None:
    snap = analysis_ref(analysis_id).get()
    return ExperimentAnalysis.from_firestore(snap.to_dict()) if snap.exists else None


def analyses_of(experiment_id: str) -> list[dict[str, Any]]:
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415 - lazy (cold start)

    query = db().collection(C.EXPERIMENT_ANALYSES).where(filter=FieldFilter("experimentId", "==", experiment_id))
    return [s.to_dict() for s in query.stream()]


# --- reads of the Firestore analysis source ------------------------------------------------------------


def stream_exposures(experiment_id: str) -> Iterator[tuple[str, str]]:
    """(userId, arm) of every exposed user of the experiment (only two fields are fetched)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    query = (db().collection(C.EXPERIMENT_EXPOSURES)
             .where(filter=FieldFilter("experimentId", "==", experiment_id)).select(["userId", "arm"]))
    for snap in query.stream():
        data = snap.to_dict()
        yield data.get("userId"), data.get("arm")


def stream_totals(experiment_id: str) -> Iterator[dict[str, Any]]:
    """Every userMetricTotals document of the experiment, as a dict."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    query = db().collection(C.USER_METRIC_TOTALS).where(filter=FieldFilter("experimentId", "==", experiment_id))
    for snap in query.stream():
        yield snap.to_dict()


def exposure_totals_pages(experiment_id: str, page_size: int, read_time: Any = None
                          ) -> Iterator[list[tuple[str, str, dict[str, Any] | None]]]:
    """(userId, arm, totals or None) of every exposed user, in document-id (= user-id) order, one page at a
    time: a cursor query over experimentExposures and one ``get_all`` of the page's totals documents. With
    ``read_time`` every page reads the database as it was then (a consistent snapshot; Firestore keeps an
    hour of versions)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    base = (db().collection(C.EXPERIMENT_EXPOSURES).where(filter=FieldFilter("experimentId", "==", experiment_id))
            .order_by("__name__").select(["userId", "arm"]).limit(page_size))
    last = None
    totals = db().collection(C.USER_METRIC_TOTALS)
    while True:
        snaps = list((base.start_after(last) if last is not None else base).stream(read_time=read_time))
        if not snaps:
            return
        last = snaps[-1]
        pairs = [(s.get("userId"), s.get("arm")) for s in snaps]
        refs = [totals.document(f"{experiment_id}_{u}") for u, _ in pairs if u]
        found = {s.id: s.to_dict() for s in db().get_all(refs, read_time=read_time) if s.exists}
        yield [(u, a, found.get(f"{experiment_id}_{u}")) for u, a in pairs if u]
        if len(snaps) < page_size:
            return


def fraud_scores_at_least(min_score: float) -> dict[str, float]:
    """{userId: maxScore} of every user whose highest fraud score is ≥ ``min_score``: one range query
    over the (small) flagged population instead of one read per analysed user."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    query = (db().collection(C.FRAUD_SCORES).where(filter=FieldFilter("maxScore", ">=", min_score))
             .select(["maxScore"]))
    out: dict[str, float] = {}
    for snap in query.stream():
        score = (snap.to_dict() or {}).get("maxScore")
        if isinstance(score, (int, float)):
            out[snap.id] = float(score)
    return out


def contaminated_users(experiment_id: str, cohort_id: str | None) -> set[str]:
    """Users contaminated by spillover for this experiment (a TREATMENT benefit reached them) or inside
    its holdout cohort (service/spillover.py records both in holdoutContaminations)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    users: set[str] = set()
    base = db().collection(C.HOLDOUT_CONTAMINATIONS)
    queries = [base.where(filter=FieldFilter("experimentId", "==", experiment_id))]
    if cohort_id:
        queries.append(base.where(filter=FieldFilter("cohortId", "==", cohort_id)))
    for query in queries:
        for snap in query.select(["userId"]).stream():
            user = (snap.to_dict() or {}).get("userId")
            if user:
                users.add(user)
    return users


# --- guardrail alerts ----------------------------------------------------------------------------------


def alert_ref(alert_id: str):
    return db().collection(C.EXPERIMENT_ALERTS).document(alert_id)




def alerts_of(experiment_id: str, alert_type: str) -> list[dict[str, Any]]:
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    query = (db().collection(C.EXPERIMENT_ALERTS).where(filter=FieldFilter("experimentId", "==", experiment_id))
             .where(filter=FieldFilter("type", "==", alert_type)))
    return [s.to_dict() for s in query.stream()]
