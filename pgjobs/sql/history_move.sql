-- Move up to :batch finished jobs that are still in pgjobs.jobs_live into
-- the history: those an upgrade from revision 0008 left there, or rows an
-- operator finished by hand in the live table. Returns how many moved.
SELECT pgjobs.move_finished_to_history(CAST(:batch AS integer)) AS moved
