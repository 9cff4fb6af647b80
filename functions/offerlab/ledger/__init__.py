"""The tamper-evident ledger's pure core (docs/ledger.md): canonical encoding, hash chain, verification.

Nothing here imports Firebase or Google (tests/unit/test_ledger_layering.py checks it): the format can be
re-implemented and verified outside the system from docs/ledger.md and the golden vectors alone.
"""
