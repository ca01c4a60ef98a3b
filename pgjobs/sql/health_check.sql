-- Proves that a quiet connection still reaches the server (the listener's,
-- which could otherwise sit deaf on a half-open TCP connection).
SELECT 1 AS ok
