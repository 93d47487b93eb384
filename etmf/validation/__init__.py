"""Computer system validation: requirement catalogue, IQ/OQ report, traceability, PQ template."""
