#include "CSystemShim.h"

#include <sys/prctl.h>

int keysat_set_nondumpable(void) { return prctl(PR_SET_DUMPABLE, 0L, 0L, 0L, 0L); }

int keysat_get_dumpable(void) { return prctl(PR_GET_DUMPABLE, 0L, 0L, 0L, 0L); }
