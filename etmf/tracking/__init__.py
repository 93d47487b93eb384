"""Expected documents (EDL), milestones, completeness metrics, expiry, person documents,
reminders and inspection readiness.

Everything shown here is computed from the documents and the EDL, never typed in.
"""
