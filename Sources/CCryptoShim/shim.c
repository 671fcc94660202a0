#include "CCryptoShim.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// HMAC-SHA256 (RFC 2104) over libcrypto's SHA-256, with the inner and outer states computed once
// per key: a run signs thousands of bodies with a handful of endpoint secrets, and OpenSSL 3's
// HMAC() and EVP_MAC set the key up again (provider look-ups included) for every body, which
// cost more than hashing the body itself. SHA256_Init/Update/Final are deprecated in OpenSSL 3
// but exported; they are the plain primitive this construction needs.
static int (*p_SHA256_Init)(SHA256_CTX *);
static int (*p_SHA256_Update)(SHA256_CTX *, const void *, size_t);
static int (*p_SHA256_Final)(unsigned char *, SHA256_CTX *);

// Ed25519 (Standard Webhooks v1a): the EVP calls for raw keys. Ed25519 signs the whole message
// at once (no streaming digest), so EVP_DigestSign/EVP_DigestVerify are called one-shot, with a
// NULL digest as EVP_PKEY_ED25519 requires.
static EVP_PKEY *(*p_EVP_PKEY_new_raw_private_key)(int, ENGINE *, const unsigned char *, size_t);
static EVP_PKEY *(*p_EVP_PKEY_new_raw_public_key)(int, ENGINE *, const unsigned char *, size_t);
static int (*p_EVP_PKEY_get_raw_public_key)(const EVP_PKEY *, unsigned char *, size_t *);
static void (*p_EVP_PKEY_free)(EVP_PKEY *);
static EVP_MD_CTX *(*p_EVP_MD_CTX_new)(void);
static void (*p_EVP_MD_CTX_free)(EVP_MD_CTX *);
static int (*p_EVP_DigestSignInit)(EVP_MD_CTX *, EVP_PKEY_CTX **, const EVP_MD *, ENGINE *, EVP_PKEY *);
static int (*p_EVP_DigestSign)(EVP_MD_CTX *, unsigned char *, size_t *, const unsigned char *, size_t);
static int (*p_EVP_DigestVerifyInit)(EVP_MD_CTX *, EVP_PKEY_CTX **, const EVP_MD *, ENGINE *, EVP_PKEY *);
static int (*p_EVP_DigestVerify)(EVP_MD_CTX *, const unsigned char *, size_t, const unsigned char *, size_t);

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
    struct { void **pointer; const char *name; } ed25519[] = {
        {(void **)&p_EVP_PKEY_new_raw_private_key, "EVP_PKEY_new_raw_private_key"},
        {(void **)&p_EVP_PKEY_new_raw_public_key, "EVP_PKEY_new_raw_public_key"},
        {(void **)&p_EVP_PKEY_get_raw_public_key, "EVP_PKEY_get_raw_public_key"},
        {(void **)&p_EVP_PKEY_free, "EVP_PKEY_free"},
        {(void **)&p_EVP_MD_CTX_new, "EVP_MD_CTX_new"},
        {(void **)&p_EVP_MD_CTX_free, "EVP_MD_CTX_free"},
        {(void **)&p_EVP_DigestSignInit, "EVP_DigestSignInit"},
        {(void **)&p_EVP_DigestSign, "EVP_DigestSign"},
        {(void **)&p_EVP_DigestVerifyInit, "EVP_DigestVerifyInit"},
        {(void **)&p_EVP_DigestVerify, "EVP_DigestVerify"},
    };
    for (size_t i = 0; i < sizeof ed25519 / sizeof ed25519[0]; i++) {
        *ed25519[i].pointer = dlsym(handle, ed25519[i].name);
        if (!*ed25519[i].pointer) {
            p_SHA256_Final = NULL;
            snprintf(error, size, "libcrypto.so.3 has no %s", ed25519[i].name);
            return -1;
        }
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

void *keysat_ed25519_private_key(const unsigned char *seed) {
    if (!p_SHA256_Final) return NULL;
    return p_EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
}

void *keysat_ed25519_public_key(const unsigned char *public_key) {
    if (!p_SHA256_Final) return NULL;
    return p_EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, public_key, 32);
}

int keysat_ed25519_raw_public_key(void *key, unsigned char *public_key) {
    size_t length = 32;
    if (!p_SHA256_Final || !key) return -1;
    if (p_EVP_PKEY_get_raw_public_key(key, public_key, &length) != 1 || length != 32) return -1;
    return 0;
}

void keysat_ed25519_free(void *key) {
    if (p_SHA256_Final && key) p_EVP_PKEY_free(key);
}

int keysat_ed25519_sign(void *key, const unsigned char *prefix, size_t prefix_length,
                        const unsigned char *message, size_t length, unsigned char *signature) {
    if (!p_SHA256_Final || !key) return -1;
    // One buffer: Ed25519 hashes the message twice (RFC 8032), so it cannot be streamed.
    unsigned char *whole = malloc(prefix_length + length + 1);
    if (!whole) return -1;
    if (prefix_length) memcpy(whole, prefix, prefix_length);
    if (length) memcpy(whole + prefix_length, message, length);
    EVP_MD_CTX *context = p_EVP_MD_CTX_new();
    size_t signature_length = 64;
    int ok = context && p_EVP_DigestSignInit(context, NULL, NULL, NULL, key) == 1 &&
             p_EVP_DigestSign(context, signature, &signature_length, whole, prefix_length + length) == 1 &&
             signature_length == 64;
    if (context) p_EVP_MD_CTX_free(context);
    free(whole);
    return ok ? 0 : -1;
}

int keysat_ed25519_verify(void *key, const unsigned char *message, size_t length, const unsigned char *signature,
                          size_t signature_length) {
    static const unsigned char empty[1];
    if (!p_SHA256_Final || !key) return -1;
    if (!message) message = empty;
    EVP_MD_CTX *context = p_EVP_MD_CTX_new();
    if (!context) return -1;
    int result = -1;
    if (p_EVP_DigestVerifyInit(context, NULL, NULL, NULL, key) == 1) {
        // 1 valid; 0 (or a negative, for a malformed signature) invalid.
        result = p_EVP_DigestVerify(context, signature, signature_length, message, length) == 1 ? 1 : 0;
    }
    p_EVP_MD_CTX_free(context);
    return result;
}
