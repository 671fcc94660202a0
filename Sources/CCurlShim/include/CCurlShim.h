// libcurl for Swift, loaded on first use.
//
// Two reasons for this target (CCryptoShim does the same for libcrypto):
// - curl_easy_setopt, curl_multi_setopt and curl_easy_getinfo are variadic, which Swift cannot
//   call: there is one fixed-signature wrapper per argument type. Choosing the right one for an
//   option is the caller's duty (CURLOPT_POSTFIELDSIZE takes a long, _LARGE a curl_off_t).
// - Linking libcurl costs every start ~4 ms (it pulls in some 30 libraries), more than an idle
//   keysat-deliver run may take. So libcurl is not linked: keysat_curl_load() dlopens it the
//   first time a run has something to send, and every call goes through the pointers it resolves.
#ifndef KEYSAT_CCURLSHIM_H
#define KEYSAT_CCURLSHIM_H

#include <curl/curl.h>
#include <stddef.h>

typedef size_t (*keysat_curl_data_callback)(char *data, size_t size, size_t count, void *context);
typedef curl_socket_t (*keysat_curl_opensocket_callback)(void *context, curlsocktype purpose,
                                                         struct curl_sockaddr *address);

/// Loads libcurl (once); returns 0, or -1 with a message in `error`.
int keysat_curl_load(char *error, size_t size);

CURLcode keysat_curl_global_init(long flags);
CURL *keysat_curl_easy_init(void);
void keysat_curl_easy_cleanup(CURL *handle);
void keysat_curl_easy_reset(CURL *handle);
const char *keysat_curl_easy_strerror(CURLcode code);
struct curl_slist *keysat_curl_slist_append(struct curl_slist *list, const char *string);
void keysat_curl_slist_free_all(struct curl_slist *list);
CURLM *keysat_curl_multi_init(void);
CURLMcode keysat_curl_multi_cleanup(CURLM *multi);
CURLMcode keysat_curl_multi_add_handle(CURLM *multi, CURL *handle);
CURLMcode keysat_curl_multi_remove_handle(CURLM *multi, CURL *handle);
CURLMcode keysat_curl_multi_perform(CURLM *multi, int *running);
/* Ends a curl_multi_poll under way on another thread (libcurl >= 7.68, the package's minimum). */
CURLMcode keysat_curl_multi_wakeup(CURLM *multi);
CURLMcode keysat_curl_multi_poll(CURLM *multi, struct curl_waitfd *fds, unsigned int count, int timeout, int *ready);
CURLMsg *keysat_curl_multi_info_read(CURLM *multi, int *remaining);
const char *keysat_curl_multi_strerror(CURLMcode code);

CURLcode keysat_easy_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode keysat_easy_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode keysat_easy_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode keysat_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode keysat_easy_setopt_callback(CURL *handle, CURLoption option, keysat_curl_data_callback value);
CURLcode keysat_easy_setopt_opensocket(CURL *handle, keysat_curl_opensocket_callback value);
CURLcode keysat_easy_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode keysat_easy_getinfo_string(CURL *handle, CURLINFO info, char **value);
CURLMcode keysat_multi_setopt_long(CURLM *multi, CURLMoption option, long value);

/// The address in a curl_sockaddr, whose `addr` member is followed by room for IPv6.
static inline const struct sockaddr *keysat_curl_sockaddr_address(const struct curl_sockaddr *address) {
    return &address->addr;
}

static const curl_socket_t keysat_curl_socket_bad = CURL_SOCKET_BAD;

#endif
