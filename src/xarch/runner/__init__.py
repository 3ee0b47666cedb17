"""Runners: doctor (one verdict per target on this host) and provision-runner."""
