"""Helpers for tests: real nodes on free loopback ports in temp dirs."""
