/*
 * outfile.h - an output file that appears whole or not at all: written as
 * PATH.tmp, flushed, fsync'd and renamed over PATH on commit; removed if
 * anything fails or the writer gives up.  Exports, query answers, their
 * provenance files and files received from a gateway all go through it, so
 * a reader never sees half an output.
 */
#ifndef CG_OUTFILE_H
#define CG_OUTFILE_H

#include <stdio.h>
#include <sys/types.h>
#include "base/err.h"

struct outfile {
	FILE *f;                 /* write here between open and commit */
	char *path, *tmp;        /* owned; freed by commit or abort */
};

/* Create PATH.tmp with `mode` (truncating a stale one). */
int outfile_open(struct outfile *o, const char *path, mode_t mode, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);
/* Flush, fsync, close and rename onto PATH; on any failure PATH.tmp is removed. Always releases o. */
int outfile_commit(struct outfile *o, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);
/* Close and remove PATH.tmp; a no-op after commit or on a zeroed struct. */
void outfile_abort(struct outfile *o) CG_NONNULL(1);

#endif
