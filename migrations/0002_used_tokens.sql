-- JWT ids already used, shared by every replica and kept across restarts so
-- that a replayed token is refused anywhere. The key is a SHA-256 of the
-- issuer and jti (never the token); rows expire with their token (Unix
-- seconds, leeway included) and are swept.

CREATE TABLE used_tokens (
    token_key TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE INDEX used_tokens_by_expiry ON used_tokens (expires_at);
