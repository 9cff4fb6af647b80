"""Use cases: one function per action, each one Firestore transaction that also stamps the change."""
