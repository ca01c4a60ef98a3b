"""`python -m pgjobs bench` against a raw-SQL reference queue; `bench.dashboard` times the pages."""
