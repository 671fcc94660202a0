// libcrypto's SHA-256 and Ed25519 for Swift, loaded on first use, and HMAC-SHA256 over SHA-256 with the padded
// key states computed once per key. Linked, libcrypto would cost every start ~0.7 ms; loaded,
// it costs only the runs that sign or verify.
#ifndef KEYSAT_CCRYPTOSHIM_H
#define KEYSAT_CCRYPTOSHIM_H

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stddef.h>

/// Loads libcrypto's SHA-256 and Ed25519 calls (once); returns 0, or -1 with a message in `error`. Linked,
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

/// Ed25519 keys (Standard Webhooks v1a) as opaque EVP_PKEY pointers, freed with
/// `keysat_ed25519_free`; NULL when libcrypto refuses the bytes or is not loaded.
/// A private key from its 32-byte seed (RFC 8032's private key).
void *keysat_ed25519_private_key(const unsigned char *seed);
/// A public key from its 32 bytes.
void *keysat_ed25519_public_key(const unsigned char *public_key);
/// The 32 bytes of a key's public half into `public_key`; returns 0 on success.
int keysat_ed25519_raw_public_key(void *key, unsigned char *public_key);
void keysat_ed25519_free(void *key);

/// The Ed25519 signature (64 bytes) of `prefix` followed by `message`; returns 0 on success.
int keysat_ed25519_sign(void *key, const unsigned char *prefix, size_t prefix_length,
                        const unsigned char *message, size_t length, unsigned char *signature);

/// 1 when `signature` is `message`'s under the public `key`, 0 when it is not, -1 on an error.
int keysat_ed25519_verify(void *key, const unsigned char *message, size_t length, const unsigned char *signature,
                          size_t signature_length);

#endif
