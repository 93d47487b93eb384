"""Subjects: screening, consent against the ICF in force, enrollment, visits."""
