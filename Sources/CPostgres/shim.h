// libpq's declarations only (Debian's libpq-dev installs them under /usr/include/postgresql,
// which is not on the default include path; the header's own includes are relative).
// Nothing here links libpq: CPostgresShim loads it at run time.
#include <postgresql/libpq-fe.h>
