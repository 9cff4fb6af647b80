"""API layer: request/response models, callers and roles, and the mapping of errors to HttpsError."""
