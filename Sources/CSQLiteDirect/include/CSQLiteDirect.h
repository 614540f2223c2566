// The few SQLite C functions CardDesk's SQLite writer calls, from the one SQLite copy in the process: the build that
// sqlite-nio (vapor/sqlite-nio, pinned in Package.swift) vendors, whose symbols carry the `sqlite_nio_` prefix. The
// writer must use that same copy: two SQLite libraries in one process on one database file break each other's POSIX
// locks (closing a file in one drops the locks the other holds). The functions are SQLite's public C API; only the
// prefix is sqlite-nio's.
#ifndef CARDDESK_SQLITE_DIRECT_H
#define CARDDESK_SQLITE_DIRECT_H

#include <stdint.h>

typedef struct cd_sqlite3 cd_sqlite3;
typedef struct cd_sqlite3_stmt cd_sqlite3_stmt;

#define CD_SQLITE_OK 0
#define CD_SQLITE_ROW 100
#define CD_SQLITE_DONE 101
#define CD_SQLITE_INTEGER 1
#define CD_SQLITE_FLOAT 2
#define CD_SQLITE_TEXT 3
#define CD_SQLITE_BLOB 4
#define CD_SQLITE_NULL 5
#define CD_SQLITE_OPEN_READWRITE 0x00000002
#define CD_SQLITE_OPEN_CREATE 0x00000004
#define CD_SQLITE_OPEN_NOMUTEX 0x00008000

/// Opens an existing database, with the query planner stability guarantee on (a statement's plan never depends on the
/// values bound to it, so a kept statement is never compiled again because its values changed).
int cd_sqlite_open(const char *path, cd_sqlite3 **db);
int cd_sqlite_close(cd_sqlite3 *db);
const char *cd_sqlite_errmsg(cd_sqlite3 *db);
/// `used` receives how many bytes of `sql` the first statement took (the rest is a tail the caller must refuse).
int cd_sqlite_prepare(cd_sqlite3 *db, const char *sql, int bytes, cd_sqlite3_stmt **statement, int *used);
int cd_sqlite_finalize(cd_sqlite3_stmt *statement);
int cd_sqlite_reset(cd_sqlite3_stmt *statement);
int cd_sqlite_clear_bindings(cd_sqlite3_stmt *statement);
int cd_sqlite_step(cd_sqlite3_stmt *statement);
int cd_sqlite_bind_parameter_count(cd_sqlite3_stmt *statement);
int cd_sqlite_bind_int64(cd_sqlite3_stmt *statement, int index, int64_t value);
int cd_sqlite_bind_double(cd_sqlite3_stmt *statement, int index, double value);
/// Copies the bytes (SQLITE_TRANSIENT).
int cd_sqlite_bind_text(cd_sqlite3_stmt *statement, int index, const char *text, int bytes);
/// Copies the bytes (SQLITE_TRANSIENT).
int cd_sqlite_bind_blob(cd_sqlite3_stmt *statement, int index, const void *bytes, int count);
int cd_sqlite_bind_null(cd_sqlite3_stmt *statement, int index);
int cd_sqlite_column_count(cd_sqlite3_stmt *statement);
const char *cd_sqlite_column_name(cd_sqlite3_stmt *statement, int column);
int cd_sqlite_column_type(cd_sqlite3_stmt *statement, int column);
int64_t cd_sqlite_column_int64(cd_sqlite3_stmt *statement, int column);
double cd_sqlite_column_double(cd_sqlite3_stmt *statement, int column);
const unsigned char *cd_sqlite_column_text(cd_sqlite3_stmt *statement, int column);
const void *cd_sqlite_column_blob(cd_sqlite3_stmt *statement, int column);
int cd_sqlite_column_bytes(cd_sqlite3_stmt *statement, int column);
int cd_sqlite_extended_errcode(cd_sqlite3 *db);
int cd_sqlite_busy_timeout(cd_sqlite3 *db, int milliseconds);
#define CD_SQLITE_BUSY 5

/// Whether a transaction is open on `db` (BEGIN run, COMMIT or ROLLBACK not yet).
int cd_sqlite_in_transaction(cd_sqlite3 *db);
/// Whether `statement` changes nothing in the database (SELECT and the like).
int cd_sqlite_statement_reads_only(cd_sqlite3_stmt *statement);
/// How many times SQLite compiled `statement` again since it was prepared (SQLITE_STMTSTATUS_REPREPARE).
int cd_sqlite_recompilations(cd_sqlite3_stmt *statement);

#endif
