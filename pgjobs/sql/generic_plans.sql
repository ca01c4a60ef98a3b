-- A hot loop's connection (pgjobs/worker/_dedicated.py) keeps one generic plan
-- for each of its prepared statements, never planning a run for its values.
SET plan_cache_mode = force_generic_plan
