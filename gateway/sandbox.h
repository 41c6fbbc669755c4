/*
 * sandbox.h - the network worker's sandbox (privilege separation,
 * gateway/monitor.h), applied once the worker is set up: TLS context loaded,
 * store open, listening socket ready; before its first connection.
 *
 * Landlock (when the kernel has it): the worker may open only the database
 * file and its -wal and -shm, the spool directory (where SQLite's temporary
 * files go too) and /dev/null and /dev/urandom; the key directory, /proc and
 * everything else is refused (EACCES).  A kernel without Landlock is
 * reported in *why_not and logged by the caller; it is not an error.
 *
 * seccomp-bpf (libseccomp), an allow-list: what the TLS accept loop, the
 * connection threads, SQLite and the spool use.  Everything else fails with
 * EPERM, among it ptrace, process_vm_readv/writev, execve, socket, connect,
 * bind, fork (clone without CLONE_THREAD), kill and tgkill of another
 * process, and ioctl other than FIONREAD, FIONBIO and TCGETS.  A seccomp
 * that cannot be installed is an error: the worker must not serve without it.
 *
 * Errors: 0 or a negative CG_ERR_* with err set.
 */
#ifndef CG_SANDBOX_H
#define CG_SANDBOX_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include "base/err.h"

#define SANDBOX_SECCOMP  1u
#define SANDBOX_LANDLOCK 2u

int sandbox_apply(const char *db_path, const char *spool_dir, unsigned *applied, char *why_not, size_t why_size,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

/*
 * For the tests (CROSSGATE_TEST_SANDBOX_PROBE, docs/DESIGN.md): try what a
 * compromised worker would, and log one JSON line each with the outcome,
 * "denied" or "allowed": open each of the n files, and read the memory of
 * process `monitor` at an address it has mapped, by process_vm_readv and
 * through /proc/PID/mem.
 */
void sandbox_probe(const char *const *files, size_t n, pid_t monitor, FILE *log) CG_NONNULL(4);

#endif
