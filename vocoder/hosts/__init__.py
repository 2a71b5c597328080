"""Hosts: the programs that run the engine for a user (files, live voices, batches)."""
