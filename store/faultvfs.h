/*
 * faultvfs.h - I/O fault injection under SQLite, for the tests that show a
 * failed write or fsync leaves the store as it was (SQLite's own test_vfs.c
 * does the same for its I/O-error tests).
 *
 * A shim VFS named "crossgate-fault" forwards every call to the default VFS
 * and makes the Nth write (or fsync) of any file of the process fail with
 * SQLITE_IOERR_WRITE (SQLITE_IOERR_FSYNC).  It is registered, and the store
 * opens its database through it, only when the environment names a fault:
 *
 *   CROSSGATE_FAULT_IO=write:N    the Nth write fails, later ones succeed
 *   CROSSGATE_FAULT_IO=write:N+   the Nth and every later write fail
 *   CROSSGATE_FAULT_IO=sync:N[+]  the same for fsync
 *
 * Without that variable nothing is registered and the store uses SQLite's
 * default VFS: production pays nothing for it.
 */
#ifndef CG_FAULTVFS_H
#define CG_FAULTVFS_H

#include "base/err.h"

/*
 * The VFS name to open the store with: "crossgate-fault" when
 * CROSSGATE_FAULT_IO names a fault (registered on first use), else NULL
 * (the default VFS).  CG_ERR_ARG for a malformed CROSSGATE_FAULT_IO: a test
 * that mistypes its fault must not silently run without one.
 */
int faultvfs_name(const char **name, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);

/* Writes and fsyncs seen since registration, for the tests' sweeps. */
unsigned long faultvfs_count(int sync);

#endif
