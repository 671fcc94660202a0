#include "CPostgresShim.h"

#include <dlfcn.h>
#include <stdio.h>

// The functions used, resolved from libpq.so.5 by keysat_pq_load().
#define KEYSAT_PQ_FUNCTIONS(X)                                                                     \
    X(int, PQlibVersion, (void))                                                                   \
    X(PGconn *, PQconnectdb, (const char *))                                                       \
    X(PGconn *, PQconnectdbParams, (const char *const *, const char *const *, int))                \
    X(ConnStatusType, PQstatus, (const PGconn *))                                                  \
    X(PGTransactionStatusType, PQtransactionStatus, (const PGconn *))                              \
    X(char *, PQerrorMessage, (const PGconn *))                                                    \
    X(void, PQfinish, (PGconn *))                                                                  \
    X(int, PQserverVersion, (const PGconn *))                                                      \
    X(PQconninfoOption *, PQconninfoParse, (const char *, char **))                                \
    X(void, PQconninfoFree, (PQconninfoOption *))                                                  \
    X(PGresult *, PQexec, (PGconn *, const char *))                                                \
    X(PGresult *, PQexecParams,                                                                    \
      (PGconn *, const char *, int, const Oid *, const char *const *, const int *, const int *, int)) \
    X(ExecStatusType, PQresultStatus, (const PGresult *))                                          \
    X(char *, PQresultErrorField, (const PGresult *, int))                                         \
    X(int, PQntuples, (const PGresult *))                                                          \
    X(int, PQnfields, (const PGresult *))                                                          \
    X(char *, PQfname, (const PGresult *, int))                                                    \
    X(char *, PQgetvalue, (const PGresult *, int, int))                                            \
    X(int, PQgetisnull, (const PGresult *, int, int))                                              \
    X(int, PQgetlength, (const PGresult *, int, int))                                              \
    X(char *, PQcmdTuples, (PGresult *))                                                           \
    X(void, PQclear, (PGresult *))                                                                 \
    X(PQnoticeProcessor, PQsetNoticeProcessor, (PGconn *, PQnoticeProcessor, void *))              \
    X(int, PQsocket, (const PGconn *))                                                             \
    X(int, PQconsumeInput, (PGconn *))                                                             \
    X(PGnotify *, PQnotifies, (PGconn *))                                                          \
    X(void, PQfreemem, (void *))

#define KEYSAT_DECLARE(type, name, arguments) static type(*p_##name) arguments;
KEYSAT_PQ_FUNCTIONS(KEYSAT_DECLARE)

static void *library;

int keysat_pq_load(char *error, size_t size) {
    if (library) return 0;
    void *handle = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        snprintf(error, size, "%s", dlerror());
        return -1;
    }
#define KEYSAT_RESOLVE(type, name, arguments)                                                      \
    p_##name = (type(*) arguments)dlsym(handle, #name);                                            \
    if (!p_##name) {                                                                               \
        snprintf(error, size, "libpq.so.5 has no %s", #name);                                      \
        dlclose(handle);                                                                           \
        return -1;                                                                                 \
    }
    KEYSAT_PQ_FUNCTIONS(KEYSAT_RESOLVE)
    library = handle;
    return 0;
}

int keysat_pq_lib_version(void) { return p_PQlibVersion(); }
PGconn *keysat_pq_connectdb(const char *conninfo) { return p_PQconnectdb(conninfo); }
PGconn *keysat_pq_connectdb_params(const char *const *keywords, const char *const *values, int expand_dbname) {
    return p_PQconnectdbParams(keywords, values, expand_dbname);
}
ConnStatusType keysat_pq_status(const PGconn *conn) { return p_PQstatus(conn); }
PGTransactionStatusType keysat_pq_transaction_status(const PGconn *conn) { return p_PQtransactionStatus(conn); }
char *keysat_pq_error_message(const PGconn *conn) { return p_PQerrorMessage(conn); }
void keysat_pq_finish(PGconn *conn) { p_PQfinish(conn); }
int keysat_pq_server_version(const PGconn *conn) { return p_PQserverVersion(conn); }

PQconninfoOption *keysat_pq_conninfo_parse(const char *conninfo, char **errmsg) {
    return p_PQconninfoParse(conninfo, errmsg);
}
void keysat_pq_conninfo_free(PQconninfoOption *options) { p_PQconninfoFree(options); }

PGresult *keysat_pq_exec(PGconn *conn, const char *query) { return p_PQexec(conn, query); }
PGresult *keysat_pq_exec_params_text(PGconn *conn, const char *command, int count, const char *const *values) {
    // NULL types, lengths and formats: every parameter is text, its type inferred by the server.
    return p_PQexecParams(conn, command, count, NULL, values, NULL, NULL, 0);
}
ExecStatusType keysat_pq_result_status(const PGresult *result) { return p_PQresultStatus(result); }
char *keysat_pq_result_error_field(const PGresult *result, int field) {
    return p_PQresultErrorField(result, field);
}
int keysat_pq_ntuples(const PGresult *result) { return p_PQntuples(result); }
int keysat_pq_nfields(const PGresult *result) { return p_PQnfields(result); }
char *keysat_pq_fname(const PGresult *result, int column) { return p_PQfname(result, column); }
char *keysat_pq_getvalue(const PGresult *result, int row, int column) { return p_PQgetvalue(result, row, column); }
int keysat_pq_getisnull(const PGresult *result, int row, int column) { return p_PQgetisnull(result, row, column); }
int keysat_pq_getlength(const PGresult *result, int row, int column) { return p_PQgetlength(result, row, column); }
char *keysat_pq_cmd_tuples(PGresult *result) { return p_PQcmdTuples(result); }
void keysat_pq_clear(PGresult *result) { p_PQclear(result); }

static void keysat_pq_drop_notice(void *context, const char *message) {
    (void)context;
    (void)message;
}
void keysat_pq_silence_notices(PGconn *conn) { p_PQsetNoticeProcessor(conn, keysat_pq_drop_notice, NULL); }

int keysat_pq_socket(const PGconn *conn) { return p_PQsocket(conn); }
int keysat_pq_consume_input(PGconn *conn) { return p_PQconsumeInput(conn); }
PGnotify *keysat_pq_notifies(PGconn *conn) { return p_PQnotifies(conn); }
void keysat_pq_freemem(void *pointer) { p_PQfreemem(pointer); }
