"""Study plan, protocol and informed-consent versions, and what is in force at each site."""
