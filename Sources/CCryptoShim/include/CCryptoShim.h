// libcrypto's SHA-256 for Swift, loaded on first use, and HMAC-SHA256 over it with the padded
// key states computed once per key. Linked, libcrypto would cost every start ~0.7 ms; loaded,
// it costs only the runs that sign or verify.
#ifndef KEYSAT_CCRYPTOSHIM_H
#define KEYSAT_CCRYPTOSHIM_H

#include <openssl/sha.h>
#include <stddef.h>

/// Loads libcrypto's SHA-256 (once); returns 0, or -1 with a message in `error`. Linked,
/// libcrypto would cost every start ~0.7 ms; loaded, it costs only the runs that sign or verify.
int keysat_crypto_load(char *error, size_t size);

/// An HMAC-SHA256 key: the SHA-256 states after the inner and outer padded key (RFC 2104).
typedef struct keysat_hmac_key {
    SHA256_CTX inner;
    SHA256_CTX outer;
} keysat_hmac_key;

/// Prepares `key` from the secret's bytes; returns 0 on success.
int keysat_hmac_key_init(keysat_hmac_key *key, const void *secret, size_t length);

/// HMAC-SHA256 of `prefix` followed by `message` into `digest` (32 bytes); returns 0 on success.
int keysat_hmac_key_sign(const keysat_hmac_key *key, const unsigned char *prefix, size_t prefix_length,
                         const unsigned char *message, size_t length, unsigned char *digest);

#endif
