// Fixed-arity wrappers for libcurl's variadic calls, which Swift cannot call directly.
// One function per argument type; choosing the right one for an option is the caller's
// duty (CURLOPT_POSTFIELDSIZE takes a long, CURLOPT_POSTFIELDSIZE_LARGE a curl_off_t).
#ifndef KEYSAT_CCURLSHIM_H
#define KEYSAT_CCURLSHIM_H

#include <curl/curl.h>

typedef size_t (*keysat_curl_data_callback)(char *data, size_t size, size_t count, void *context);
typedef curl_socket_t (*keysat_curl_opensocket_callback)(void *context, curlsocktype purpose,
                                                         struct curl_sockaddr *address);

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
