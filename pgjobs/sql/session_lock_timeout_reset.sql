-- Back to the server's lock_timeout, before the connection returns to the pool.
RESET lock_timeout
