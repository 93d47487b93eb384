"""Risk: GCP oversight of sites."""
