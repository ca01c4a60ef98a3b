"""Chaos scenarios: real workers against a throwaway PostgreSQL that the tests stop and kill."""
