"""The advisory-lock keys pgjobs takes, in one place so they never collide."""

from __future__ import annotations

import hashlib


def _key(name: str) -> int:
    """A stable signed 64-bit key: the first 8 bytes of sha1(name)."""
    return int.from_bytes(
        hashlib.sha1(name.encode(), usedforsecurity=False).digest()[:8], "big", signed=True
    )


#: Held (transaction-scoped) while `pgjobs migrate` runs, so concurrent
#: migrators wait for each other instead of racing. Value: 793301152439471131.
MIGRATE_LOCK_KEY = _key("pgjobs.migrate")

#: Held (session-scoped) by the leader worker, on a dedicated connection
#: (pgjobs/worker/_leader.py). Value: -5701075328894498111, shown in pg_locks
#: as classid 2967582257, objid 2810186433, objsubid 1 (a bigint key is split
#: into its high and low 32 bits). To see the leader:
#: SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1
#:   AND classid = 2967582257 AND objid = 2810186433;
#: The application's own advisory locks only collide with it if they use this
#: exact 64-bit value; the keys here are sha1 hashes of "pgjobs.<name>".
LEADER_LOCK_KEY = _key("pgjobs.leader")
