// libc calls Swift cannot make directly (variadic in C), at fixed arity.
#ifndef KEYSAT_CSYSTEMSHIM_H
#define KEYSAT_CSYSTEMSHIM_H

/// prctl(PR_SET_DUMPABLE, 0): no core dump of this process, and /proc/PID/mem, environ and the
/// like readable by root only. For the processes that hold endpoint secrets. Returns 0 or -1
/// with errno set.
int keysat_set_nondumpable(void);

/// Whether this process is dumpable (prctl(PR_GET_DUMPABLE)): 1, 0, or -1 with errno set.
int keysat_get_dumpable(void);

#endif
