// libpq for Swift, loaded on first use.
//
// Why this target exists (CCurlShim does the same for libcurl): linking libpq would make every
// program that depends on the PostgreSQL code load it and its tree (OpenSSL, Kerberos, LDAP)
// at start-up, an SQLite host included. So libpq is not linked: keysat_pq_load() dlopens
// libpq.so.5 the first time a PostgreSQL connection is opened, and every call goes through the
// pointers it resolves. The wrappers map libpq's calls one to one; the logic stays in Swift.
#ifndef KEYSAT_CPOSTGRESSHIM_H
#define KEYSAT_CPOSTGRESSHIM_H

#include <postgresql/libpq-fe.h>
#include <stddef.h>

/// Loads libpq (once); returns 0, or -1 with a message in `error`.
int keysat_pq_load(char *error, size_t size);

/// libpq's version as PQlibVersion() says it (150018 for 15.18).
int keysat_pq_lib_version(void);

PGconn *keysat_pq_connectdb(const char *conninfo);
PGconn *keysat_pq_connectdb_params(const char *const *keywords, const char *const *values, int expand_dbname);
ConnStatusType keysat_pq_status(const PGconn *conn);
PGTransactionStatusType keysat_pq_transaction_status(const PGconn *conn);
char *keysat_pq_error_message(const PGconn *conn);
void keysat_pq_finish(PGconn *conn);
int keysat_pq_server_version(const PGconn *conn);

PQconninfoOption *keysat_pq_conninfo_parse(const char *conninfo, char **errmsg);
void keysat_pq_conninfo_free(PQconninfoOption *options);

PGresult *keysat_pq_exec(PGconn *conn, const char *query);
/// PQexecParams with every parameter in text format (types inferred by the server, or cast in
/// the SQL) and results in text format.
PGresult *keysat_pq_exec_params_text(PGconn *conn, const char *command, int count, const char *const *values);
ExecStatusType keysat_pq_result_status(const PGresult *result);
char *keysat_pq_result_error_field(const PGresult *result, int field);
int keysat_pq_ntuples(const PGresult *result);
int keysat_pq_nfields(const PGresult *result);
char *keysat_pq_fname(const PGresult *result, int column);
char *keysat_pq_getvalue(const PGresult *result, int row, int column);
int keysat_pq_getisnull(const PGresult *result, int row, int column);
int keysat_pq_getlength(const PGresult *result, int row, int column);
char *keysat_pq_cmd_tuples(PGresult *result);
void keysat_pq_clear(PGresult *result);

/// Replaces libpq's default notice processor (which prints NOTICEs and WARNINGs to stderr,
/// where they would be mixed into the tool's output) by one that drops them.
void keysat_pq_silence_notices(PGconn *conn);

// For LISTEN: the socket to poll, reading what arrived, and the notifications in it.
int keysat_pq_socket(const PGconn *conn);
int keysat_pq_consume_input(PGconn *conn);
PGnotify *keysat_pq_notifies(PGconn *conn);
void keysat_pq_freemem(void *pointer);

#endif
