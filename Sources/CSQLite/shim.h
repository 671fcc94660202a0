#include <sqlite3.h>

/// SQLite keeps allocation statistics, under a process-wide mutex taken at every allocation,
/// unless told not to before it initialises. Nothing here reads them (no soft heap limit), and a
/// busy run's commits spent 7 % of their instructions on that mutex. Returns SQLITE_MISUSE,
/// harmlessly, once SQLite is initialised. (A function because sqlite3_config is variadic.)
static inline int keysat_sqlite3_disable_memory_statistics(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}
