"""Pure statistics engine for offer experiments (no Firebase/Google imports).

Modules, each imported on demand by callers (nothing heavy is imported here, cold start matters):

    sufficient   MomentStats: per-arm sufficient statistics (n, Σy, Σy², Σx, Σx², Σxy), summable
    frequentist  Welch t-test, delta-method relative lift, ratio metrics, CUPED, SRM, Holm
    sequential   always-valid (anytime) p-values / confidence sequences and one-sided guardrails
    corrections  exclusions, winsorization and the fast corrected analysis on per-user arrays

See docs/statistics.md for what each method is, when it is used, thresholds and citations.
"""
