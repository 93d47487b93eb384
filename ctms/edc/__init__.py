"""EDC import: CDISC ODM 1.3 clinical data updates subject status and visit completion."""
