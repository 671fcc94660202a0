#include "CCurlShim.h"

#include <dlfcn.h>
#include <string.h>
#include <stdio.h>

// The functions used, resolved from libcurl.so.4 by keysat_curl_load().
#define KEYSAT_CURL_FUNCTIONS(X)                                                                   \
    X(CURLcode, curl_global_init, (long))                                                          \
    X(CURL *, curl_easy_init, (void))                                                              \
    X(void, curl_easy_cleanup, (CURL *))                                                           \
    X(void, curl_easy_reset, (CURL *))                                                             \
    X(const char *, curl_easy_strerror, (CURLcode))                                                \
    X(CURLcode, curl_easy_setopt, (CURL *, CURLoption, ...))                                       \
    X(CURLcode, curl_easy_getinfo, (CURL *, CURLINFO, ...))                                        \
    X(struct curl_slist *, curl_slist_append, (struct curl_slist *, const char *))                 \
    X(void, curl_slist_free_all, (struct curl_slist *))                                            \
    X(CURLM *, curl_multi_init, (void))                                                            \
    X(CURLMcode, curl_multi_cleanup, (CURLM *))                                                    \
    X(CURLMcode, curl_multi_add_handle, (CURLM *, CURL *))                                         \
    X(CURLMcode, curl_multi_remove_handle, (CURLM *, CURL *))                                      \
    X(CURLMcode, curl_multi_perform, (CURLM *, int *))                                             \
    X(CURLMcode, curl_multi_poll, (CURLM *, struct curl_waitfd *, unsigned int, int, int *))       \
    X(CURLMcode, curl_multi_wakeup, (CURLM *))                                                     \
    X(CURLMsg *, curl_multi_info_read, (CURLM *, int *))                                           \
    X(const char *, curl_multi_strerror, (CURLMcode))                                              \
    X(CURLMcode, curl_multi_setopt, (CURLM *, CURLMoption, ...))

#define KEYSAT_DECLARE(type, name, arguments) static type(*p_##name) arguments;
KEYSAT_CURL_FUNCTIONS(KEYSAT_DECLARE)

static void *library;

int keysat_curl_load(char *error, size_t size) {
    if (library) return 0;
    void *handle = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        snprintf(error, size, "%s", dlerror());
        return -1;
    }
#define KEYSAT_RESOLVE(type, name, arguments)                                                      \
    p_##name = (type(*) arguments)dlsym(handle, #name);                                            \
    if (!p_##name) {                                                                               \
        snprintf(error, size, "libcurl.so.4 has no %s", #name);                                    \
        dlclose(handle);                                                                           \
        return -1;                                                                                 \
    }
    KEYSAT_CURL_FUNCTIONS(KEYSAT_RESOLVE)
    library = handle;
    return 0;
}

CURLcode keysat_curl_global_init(long flags) { return p_curl_global_init(flags); }
CURL *keysat_curl_easy_init(void) { return p_curl_easy_init(); }
void keysat_curl_easy_cleanup(CURL *handle) { p_curl_easy_cleanup(handle); }
void keysat_curl_easy_reset(CURL *handle) { p_curl_easy_reset(handle); }
const char *keysat_curl_easy_strerror(CURLcode code) { return p_curl_easy_strerror(code); }
struct curl_slist *keysat_curl_slist_append(struct curl_slist *list, const char *string) {
    return p_curl_slist_append(list, string);
}
void keysat_curl_slist_free_all(struct curl_slist *list) { p_curl_slist_free_all(list); }
CURLM *keysat_curl_multi_init(void) { return p_curl_multi_init(); }
CURLMcode keysat_curl_multi_cleanup(CURLM *multi) { return p_curl_multi_cleanup(multi); }
CURLMcode keysat_curl_multi_add_handle(CURLM *multi, CURL *handle) { return p_curl_multi_add_handle(multi, handle); }
CURLMcode keysat_curl_multi_remove_handle(CURLM *multi, CURL *handle) {
    return p_curl_multi_remove_handle(multi, handle);
}
CURLMcode keysat_curl_multi_perform(CURLM *multi, int *running) { return p_curl_multi_perform(multi, running); }
CURLMcode keysat_curl_multi_poll(CURLM *multi, struct curl_waitfd *fds, unsigned int count, int timeout, int *ready) {
    return p_curl_multi_poll(multi, fds, count, timeout, ready);
}
CURLMcode keysat_curl_multi_wakeup(CURLM *multi) { return p_curl_multi_wakeup(multi); }
CURLMsg *keysat_curl_multi_info_read(CURLM *multi, int *remaining) { return p_curl_multi_info_read(multi, remaining); }
const char *keysat_curl_multi_strerror(CURLMcode code) { return p_curl_multi_strerror(code); }

CURLcode keysat_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return p_curl_easy_setopt(handle, option, value);
}
CURLcode keysat_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return p_curl_easy_setopt(handle, option, value);
}
CURLcode keysat_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return p_curl_easy_setopt(handle, option, value);
}
CURLcode keysat_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return p_curl_easy_setopt(handle, option, value);
}
CURLcode keysat_easy_setopt_callback(CURL *handle, CURLoption option, keysat_curl_data_callback value) {
    return p_curl_easy_setopt(handle, option, value);
}
CURLcode keysat_easy_setopt_opensocket(CURL *handle, keysat_curl_opensocket_callback value) {
    return p_curl_easy_setopt(handle, CURLOPT_OPENSOCKETFUNCTION, value);
}
CURLcode keysat_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return p_curl_easy_getinfo(handle, info, value);
}
CURLcode keysat_easy_getinfo_string(CURL *handle, CURLINFO info, char **value) {
    return p_curl_easy_getinfo(handle, info, value);
}
CURLMcode keysat_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return p_curl_multi_setopt(multi, option, value);
}
