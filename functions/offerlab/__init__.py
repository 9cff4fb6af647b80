"""offerlab: offer experimentation and holdouts for subscription apps, on Cloud Functions for Firebase.

Layers (imports only point downwards):
    entrypoints/  Cloud Functions declarations, a few lines each (re-exported by main.py)
    api/          request/response models, auth and roles, error mapping
    service/      use cases: one function per action, one Firestore transaction each
    store/        Firestore repositories; the only code that knows collection names
    ledger/       canonical encoding, hash chain, verification (pure)
    domain/       pure Python: entities, state machines, assignment hashing, rules
    stats/        pure numeric (numpy/scipy imported lazily by callers)
"""
