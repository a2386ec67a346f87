"""Admin dashboards (contract §10): stats, helper lists, compliments dashboard and network."""
