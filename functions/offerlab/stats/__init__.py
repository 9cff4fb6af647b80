"""Pure statistics engine for offer experiments (no Firebase/Google imports).

Modules, each imported on demand by callers (nothing heavy is imported here, cold start matters):

    sufficient   MomentStats: per-arm shifted sufficient statistics (n, Σ(y−K), Σ(y−K)², x-side), summable
    streaming    winsorized per-user contributions and their deltas, for blind-increment streaming
    frequentist  Welch, delta-method relative lift and its p-value, one-sided tests, ratio metrics,
                 CUPED (mean and ratio), SRM, Holm, Benjamini–Hochberg
    sequential   always-valid guardrails (exact bounded e-process or normal mixture), relative and
                 KPI guardrails, always-valid lift intervals, sequential SRM
    planning     power, MDE, sample size and days to power (fixed horizon and sequential)
    corrections  exclusions, winsorization and the fast corrected analysis on per-user arrays

See docs/statistics.md for what each method is, when it is used, thresholds and citations.
"""
