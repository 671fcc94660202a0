#include "CCryptoShim.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

// HMAC-SHA256 (RFC 2104) over libcrypto's SHA-256, with the inner and outer states computed once
// per key: a run signs thousands of bodies with a handful of endpoint secrets, and OpenSSL 3's
// HMAC() and EVP_MAC set the key up again (provider look-ups included) for every body, which
// cost more than hashing the body itself. SHA256_Init/Update/Final are deprecated in OpenSSL 3
// but exported; they are the plain primitive this construction needs.
static int (*p_SHA256_Init)(SHA256_CTX *);
static int (*p_SHA256_Update)(SHA256_CTX *, const void *, size_t);
static int (*p_SHA256_Final)(unsigned char *, SHA256_CTX *);

int keysat_crypto_load(char *error, size_t size) {
    if (p_SHA256_Final) return 0;
    void *handle = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        snprintf(error, size, "%s", dlerror());
        return -1;
    }
    *(void **)(&p_SHA256_Init) = dlsym(handle, "SHA256_Init");
    *(void **)(&p_SHA256_Update) = dlsym(handle, "SHA256_Update");
    *(void **)(&p_SHA256_Final) = dlsym(handle, "SHA256_Final");
    if (!p_SHA256_Init || !p_SHA256_Update || !p_SHA256_Final) {
        p_SHA256_Final = NULL;
        snprintf(error, size, "libcrypto.so.3 has no SHA256_Init, SHA256_Update or SHA256_Final");
        return -1;
    }
    return 0;
}

int keysat_hmac_key_init(keysat_hmac_key *key, const void *secret, size_t length) {
    unsigned char block[64] = {0};
    unsigned char pad[64];
    if (!p_SHA256_Final) return -1;
    int ok = 1;
    if (length > sizeof block) {
        SHA256_CTX hashed;
        ok &= p_SHA256_Init(&hashed) == 1;
        ok &= p_SHA256_Update(&hashed, secret, length) == 1;
        ok &= p_SHA256_Final(block, &hashed) == 1;
    } else if (length > 0) {
        memcpy(block, secret, length);
    }
    for (size_t i = 0; i < sizeof pad; i++) pad[i] = block[i] ^ 0x36;
    ok &= p_SHA256_Init(&key->inner) == 1;
    ok &= p_SHA256_Update(&key->inner, pad, sizeof pad) == 1;
    for (size_t i = 0; i < sizeof pad; i++) pad[i] = block[i] ^ 0x5c;
    ok &= p_SHA256_Init(&key->outer) == 1;
    ok &= p_SHA256_Update(&key->outer, pad, sizeof pad) == 1;
    return ok ? 0 : -1;
}

int keysat_hmac_key_sign(const keysat_hmac_key *key, const unsigned char *prefix, size_t prefix_length,
                         const unsigned char *message, size_t length, unsigned char *digest) {
    SHA256_CTX context = key->inner;
    if (!p_SHA256_Final) return -1;
    int ok = 1;
    if (prefix_length) ok &= p_SHA256_Update(&context, prefix, prefix_length) == 1;
    if (length) ok &= p_SHA256_Update(&context, message, length) == 1;
    ok &= p_SHA256_Final(digest, &context) == 1;
    context = key->outer;
    ok &= p_SHA256_Update(&context, digest, 32) == 1;
    ok &= p_SHA256_Final(digest, &context) == 1;
    return ok ? 0 : -1;
}
