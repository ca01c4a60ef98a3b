"""Tests of the web dashboard and HTTP API (skipped without the `web` extra)."""
