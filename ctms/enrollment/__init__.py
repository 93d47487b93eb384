"""Enrollment curves and the forecast of the date the target is reached."""
