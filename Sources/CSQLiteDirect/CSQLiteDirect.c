#include "CSQLiteDirect.h"

// SQLite's C API as sqlite-nio's vendored build names it (see the header). Declared here, resolved at link time from
// the VaporCSQLite objects that SQLiteNIO brings into every CardDesk binary.
typedef void (*cd_destructor)(void *);
extern int sqlite_nio_sqlite3_open_v2(const char *, cd_sqlite3 **, int, const char *);
extern int sqlite_nio_sqlite3_close_v2(cd_sqlite3 *);
extern const char *sqlite_nio_sqlite3_errmsg(cd_sqlite3 *);
extern int sqlite_nio_sqlite3_extended_errcode(cd_sqlite3 *);
extern int sqlite_nio_sqlite3_prepare_v3(cd_sqlite3 *, const char *, int, unsigned int, cd_sqlite3_stmt **, const char **);
extern int sqlite_nio_sqlite3_finalize(cd_sqlite3_stmt *);
extern int sqlite_nio_sqlite3_reset(cd_sqlite3_stmt *);
extern int sqlite_nio_sqlite3_clear_bindings(cd_sqlite3_stmt *);
extern int sqlite_nio_sqlite3_step(cd_sqlite3_stmt *);
extern int sqlite_nio_sqlite3_bind_parameter_count(cd_sqlite3_stmt *);
extern int sqlite_nio_sqlite3_bind_int64(cd_sqlite3_stmt *, int, int64_t);
extern int sqlite_nio_sqlite3_bind_double(cd_sqlite3_stmt *, int, double);
extern int sqlite_nio_sqlite3_bind_text(cd_sqlite3_stmt *, int, const char *, int, cd_destructor);
extern int sqlite_nio_sqlite3_bind_blob(cd_sqlite3_stmt *, int, const void *, int, cd_destructor);
extern int sqlite_nio_sqlite3_bind_null(cd_sqlite3_stmt *, int);
extern int sqlite_nio_sqlite3_column_count(cd_sqlite3_stmt *);
extern const char *sqlite_nio_sqlite3_column_name(cd_sqlite3_stmt *, int);
extern int sqlite_nio_sqlite3_column_type(cd_sqlite3_stmt *, int);
extern int64_t sqlite_nio_sqlite3_column_int64(cd_sqlite3_stmt *, int);
extern double sqlite_nio_sqlite3_column_double(cd_sqlite3_stmt *, int);
extern const unsigned char *sqlite_nio_sqlite3_column_text(cd_sqlite3_stmt *, int);
extern const void *sqlite_nio_sqlite3_column_blob(cd_sqlite3_stmt *, int);
extern int sqlite_nio_sqlite3_column_bytes(cd_sqlite3_stmt *, int);
extern int sqlite_nio_sqlite3_busy_timeout(cd_sqlite3 *, int);
extern int sqlite_nio_sqlite3_db_config(cd_sqlite3 *, int, ...);
extern int sqlite_nio_sqlite3_stmt_status(cd_sqlite3_stmt *, int, int);
extern int sqlite_nio_sqlite3_get_autocommit(cd_sqlite3 *);
extern int sqlite_nio_sqlite3_stmt_readonly(cd_sqlite3_stmt *);

#define CD_SQLITE_TRANSIENT ((cd_destructor)-1)
#define CD_SQLITE_PREPARE_PERSISTENT 0x01

#define CD_SQLITE_DBCONFIG_ENABLE_QPSG 1007
#define CD_SQLITE_STMTSTATUS_REPREPARE 5

int cd_sqlite_open(const char *path, cd_sqlite3 **db) {
    int result = sqlite_nio_sqlite3_open_v2(path, db, CD_SQLITE_OPEN_READWRITE | CD_SQLITE_OPEN_NOMUTEX, 0);
    if (result != CD_SQLITE_OK) return result;
    // The query planner stability guarantee: a statement's plan does not depend on the values bound to it. Without it,
    // SQLite marks a statement whose plan could (ORDER BY, a LIMIT, a range) to be compiled again whenever its
    // bindings are cleared: kept statements were parsed and planned again at nearly every run.
    return sqlite_nio_sqlite3_db_config(*db, CD_SQLITE_DBCONFIG_ENABLE_QPSG, 1, (int *)0);
}
int cd_sqlite_close(cd_sqlite3 *db) { return sqlite_nio_sqlite3_close_v2(db); }
const char *cd_sqlite_errmsg(cd_sqlite3 *db) { return sqlite_nio_sqlite3_errmsg(db); }
int cd_sqlite_extended_errcode(cd_sqlite3 *db) { return sqlite_nio_sqlite3_extended_errcode(db); }
int cd_sqlite_prepare(cd_sqlite3 *db, const char *sql, int bytes, cd_sqlite3_stmt **statement, int *used) {
    const char *tail = 0;
    int result = sqlite_nio_sqlite3_prepare_v3(db, sql, bytes, CD_SQLITE_PREPARE_PERSISTENT, statement, &tail);
    *used = tail ? (int)(tail - sql) : bytes;
    return result;
}
int cd_sqlite_finalize(cd_sqlite3_stmt *statement) { return sqlite_nio_sqlite3_finalize(statement); }
int cd_sqlite_reset(cd_sqlite3_stmt *statement) { return sqlite_nio_sqlite3_reset(statement); }
int cd_sqlite_clear_bindings(cd_sqlite3_stmt *statement) { return sqlite_nio_sqlite3_clear_bindings(statement); }
int cd_sqlite_step(cd_sqlite3_stmt *statement) { return sqlite_nio_sqlite3_step(statement); }
int cd_sqlite_bind_parameter_count(cd_sqlite3_stmt *statement) { return sqlite_nio_sqlite3_bind_parameter_count(statement); }
int cd_sqlite_bind_int64(cd_sqlite3_stmt *statement, int index, int64_t value) { return sqlite_nio_sqlite3_bind_int64(statement, index, value); }
int cd_sqlite_bind_double(cd_sqlite3_stmt *statement, int index, double value) { return sqlite_nio_sqlite3_bind_double(statement, index, value); }
int cd_sqlite_bind_text(cd_sqlite3_stmt *statement, int index, const char *text, int bytes) {
    return sqlite_nio_sqlite3_bind_text(statement, index, text, bytes, CD_SQLITE_TRANSIENT);
}
int cd_sqlite_bind_blob(cd_sqlite3_stmt *statement, int index, const void *bytes, int count) {
    return sqlite_nio_sqlite3_bind_blob(statement, index, bytes, count, CD_SQLITE_TRANSIENT);
}
int cd_sqlite_bind_null(cd_sqlite3_stmt *statement, int index) { return sqlite_nio_sqlite3_bind_null(statement, index); }
int cd_sqlite_column_count(cd_sqlite3_stmt *statement) { return sqlite_nio_sqlite3_column_count(statement); }
const char *cd_sqlite_column_name(cd_sqlite3_stmt *statement, int column) { return sqlite_nio_sqlite3_column_name(statement, column); }
int cd_sqlite_column_type(cd_sqlite3_stmt *statement, int column) { return sqlite_nio_sqlite3_column_type(statement, column); }
int64_t cd_sqlite_column_int64(cd_sqlite3_stmt *statement, int column) { return sqlite_nio_sqlite3_column_int64(statement, column); }
double cd_sqlite_column_double(cd_sqlite3_stmt *statement, int column) { return sqlite_nio_sqlite3_column_double(statement, column); }
const unsigned char *cd_sqlite_column_text(cd_sqlite3_stmt *statement, int column) { return sqlite_nio_sqlite3_column_text(statement, column); }
const void *cd_sqlite_column_blob(cd_sqlite3_stmt *statement, int column) { return sqlite_nio_sqlite3_column_blob(statement, column); }
int cd_sqlite_column_bytes(cd_sqlite3_stmt *statement, int column) { return sqlite_nio_sqlite3_column_bytes(statement, column); }
int cd_sqlite_busy_timeout(cd_sqlite3 *db, int milliseconds) { return sqlite_nio_sqlite3_busy_timeout(db, milliseconds); }
int cd_sqlite_in_transaction(cd_sqlite3 *db) { return !sqlite_nio_sqlite3_get_autocommit(db); }
int cd_sqlite_statement_reads_only(cd_sqlite3_stmt *statement) { return sqlite_nio_sqlite3_stmt_readonly(statement); }
int cd_sqlite_recompilations(cd_sqlite3_stmt *statement) {
    return sqlite_nio_sqlite3_stmt_status(statement, CD_SQLITE_STMTSTATUS_REPREPARE, 0);
}
