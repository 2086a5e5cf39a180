"""Commands: for each lazyjack command, what it does for this host's roles."""
