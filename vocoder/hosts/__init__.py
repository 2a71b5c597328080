"""Hosts: everything that drives voices (render, live, serve, the plugin loader)."""
