/*
 * outfile.h - the one way crossgate writes a file: it appears whole or not
 * at all, and nobody else's file can be made to receive it.
 *
 * outfile_open() creates a temporary file with a random name in the target's
 * directory (".NAME.<16 hex>.tmp") with O_CREAT|O_EXCL|O_NOFOLLOW: a file or
 * symlink planted there beforehand makes the open fail instead of being
 * followed or truncated.  outfile_commit() flushes, fsyncs, closes, renames
 * it over PATH (rename replaces a symlink at PATH, never writes through it)
 * and fsyncs the directory, so the new name survives a crash; anything that
 * fails removes the temporary file.  Batches, exports, query answers, their
 * provenance files, files received from a gateway, audit files, the pid
 * and port files, the analytics report and the demo's data, policy and
 * steps all go through it.
 *
 * What is written (exports, answers) may be plaintext: f's stdio buffer is
 * ours and is wiped once f is closed, so no copy is left in freed memory.
 *
 * Modes: the caller's mode, further narrowed by the process umask
 * (`crossgate` sets 077 at start); 0600 is what to pass unless a file is
 * meant to be shared.
 */
#ifndef CG_OUTFILE_H
#define CG_OUTFILE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include "base/err.h"

struct outfile {
	FILE *f;                 /* write here between open and commit */
	char *path, *tmp;        /* owned; freed by commit or abort */
	char *buf;               /* f's stdio buffer: wiped and freed after f is closed */
};

#define OUTFILE_BUF (64 * 1024)

/* Create the temporary file for PATH with `mode`. */
int outfile_open(struct outfile *o, const char *path, mode_t mode, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);
/* Flush, fsync, close, rename onto PATH, fsync the directory; on failure the temporary file is removed. Always releases o. */
int outfile_commit(struct outfile *o, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);
/* Close and remove the temporary file; a no-op after commit or on a zeroed struct. */
void outfile_abort(struct outfile *o) CG_NONNULL(1);

/* fsync the directory holding PATH, so that a rename or link into it survives a crash: 0 or -1 (errno). */
int outfile_sync_dir(const char *path) CG_NONNULL(1);

/* A whole small file at once (pid files, sidecars): open, write len bytes, commit. */
int outfile_write(const char *path, const void *data, size_t len, mode_t mode, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

#endif
