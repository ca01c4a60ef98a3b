-- The leader's pass over the circuit breakers (pgjobs/worker/_breakers.py):
-- each open breaker whose cooldown is over gets a trial job and turns
-- half_open; one whose trial ended uncounted gets another. One row per trial
-- named. With no breaker open, one look at pgjobs.task_breakers.
SELECT breaker, trial, trial_queue FROM pgjobs.breakers_trial()
