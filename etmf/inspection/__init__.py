"""Inspections: the inspector's landing page, requests for documents or explanations."""
