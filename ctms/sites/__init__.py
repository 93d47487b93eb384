"""Site lifecycle: feasibility → selection → initiation → active → enrolling → closed."""
