"""Monitoring: GCP oversight of sites."""
