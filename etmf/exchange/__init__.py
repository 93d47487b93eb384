"""TMF exchange: EMS export and import, and the certified archive package."""
