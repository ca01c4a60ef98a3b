"""`python -m pgjobs demo`: sample jobs run by an in-process worker, and the App they use."""
