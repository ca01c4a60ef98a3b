-- Finish a detach that was interrupted (the partition shows `detaching`).
ALTER TABLE pgjobs.{parent} DETACH PARTITION pgjobs.{partition} FINALIZE
