"""Deviations: GCP oversight of sites."""
