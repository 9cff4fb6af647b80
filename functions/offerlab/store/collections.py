"""Collection names. The ten of the seed (API.md §8) come first, then the ones offerlab adds.

Nothing outside ``offerlab.store`` may spell a collection name (tests/unit/test_layering.py checks).
"""
from __future__ import annotations

# The seed's ten collections.
HOLDOUT_COHORTS = "holdoutCohorts"                # cohort definitions; frozen = immutable
HOLDOUT_ASSIGNMENTS = "holdoutAssignments"        # {cohortId}_{userId}: a user's membership, written once
HOLDOUT_SPILLOVER_EVENTS = "holdoutSpilloverEvents"  # every check_spillover call
OFFER_EXPERIMENTS = "offerExperiments"            # experiment definitions and lifecycle state
EXPERIMENT_SNAPSHOTS = "experimentSnapshots"      # periodic per-arm sufficient statistics
EXPERIMENT_EVENTS = "experimentEvents"            # lifecycle events (one per transition)
EXPERIMENT_ANALYSES = "experimentAnalyses"        # bias-corrected analyses; immutable
ROLLOUT_PLANS = "rolloutPlans"                    # progressive rollout plans (doc id = experimentId)
ROLLOUT_EVENTS = "rolloutEvents"                  # rollout lifecycle events
EXPERIMENT_LEDGER = "experimentLedger"            # hash-chained audit entries

SEED_COLLECTIONS = (
    HOLDOUT_COHORTS, HOLDOUT_ASSIGNMENTS, HOLDOUT_SPILLOVER_EVENTS, OFFER_EXPERIMENTS, EXPERIMENT_SNAPSHOTS,
    EXPERIMENT_EVENTS, EXPERIMENT_ANALYSES, ROLLOUT_PLANS, ROLLOUT_EVENTS, EXPERIMENT_LEDGER,
)

# The collections offerlab adds (documented in docs/data-model.md).
PROCESSED_EVENTS = "processedEvents"              # idempotency markers of event-triggered functions
EXPERIMENT_EXPOSURES = "experimentExposures"      # {experimentId}_{userId}: a user's first exposure, written once
USER_METRIC_TOTALS = "userMetricTotals"          # {experimentId}_{userId}: per-user metric sums since exposure
FRAUD_SCORES = "fraudScores"                      # {userId}: max fraud score and reasons (fraud-signals topic)
HOLDOUT_CONTAMINATIONS = "holdoutContaminations"  # {cohortId|experimentId}_{userId}: a flagged recipient, once
LEDGER_HEADS = "ledgerHeads"                      # {chainId}: last sequence, head hash, count (docs/ledger.md)
LEDGER_PENDING = "pendingEntries"                 # ledgerHeads/{chainId}/pendingEntries/{id}: recorded, not yet sequenced
EXPERIMENT_ALERTS = "experimentAlerts"            # {alertId}: unauthorised changes and other alerts (docs/ledger.md)
PLACEMENT_LAYERS = "placementLayers"              # {placement}: layer-bucket holders and the shipped experiment (docs/program.md)
PROGRAM_LOCKS = "programLocks"                    # {name}: serialises coverage changes (starts, ships, freezes, retirements)
OFFER_REFUSALS = "offerRefusals"                  # {experimentId}_{userId}: kept out before enrolment (docs/regions.md)
CUSTOMER_STATUS = "customerStatus"                # {userId}: subscription state from ingested history
PRICE_SERIES = "priceSeries"                      # {placement}|{region}: parent of the price history of one series
PRICES_SERVED = "served"                          # priceSeries/{series}/served/{day}|{currency}|{amount}|{R|D}
EXCHANGE_RATES = "exchangeRates"                  # {date}_{base}: dated exchange rates, created once
EXPERIMENT_AGGREGATES = "experimentAggregates"    # {experimentId}_{arm}_{shard}: streamed per-arm sums (Increment only)

ALL_COLLECTIONS = SEED_COLLECTIONS + (PROCESSED_EVENTS, EXPERIMENT_EXPOSURES, USER_METRIC_TOTALS, FRAUD_SCORES,
                                     HOLDOUT_CONTAMINATIONS, LEDGER_HEADS, EXPERIMENT_ALERTS, PLACEMENT_LAYERS,
                                     PROGRAM_LOCKS, OFFER_REFUSALS, CUSTOMER_STATUS, PRICE_SERIES, EXCHANGE_RATES,
                                     EXPERIMENT_AGGREGATES)
