"""Records integrity: blob scrubbing, reconciliation, integrity alerts, backup and restore.

``integrity`` re-hashes what the database references (`etmf storage verify`), lists blobs
nothing references (`etmf storage reconcile`), serves downloads only after their hash
verified and records an audit alert when it does not (REC-1). ``backup`` writes and restores
a self-verifying copy of an instance (REC-4) without ever re-chaining the audit log.
"""
