"""What the bot does for a server's members on top of the ledger: points changes and what
follows them, member profiles, achievements, email submissions, the audit log."""
