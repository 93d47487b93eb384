"""Safety: GCP oversight of sites."""
