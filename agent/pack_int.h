/*
 * pack_int.h - what pack.c and pack_read.c share: the rows as checked, the
 * windows of CSV rows the worker threads check, and the packing context.
 * Private to agent/pack*.c.
 */
#ifndef CG_PACK_INT_H
#define CG_PACK_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>

#include "agent/pack.h"
#include "base/csvfile.h"
#include "policy/policy.h"

/* One good row, held until duplicates are resolved. */
struct pack_row {
	uint64_t line;
	int64_t consent_at;
	uint32_t consent_bits;
	uint32_t parent;                   /* union-find over rows of one user */
	uint8_t has_id[2];                 /* email, phone */
	uint64_t dhash[2];                 /* SipHash of the normalized identifiers, for the dedupe table */
	size_t id_off[2];                  /* normalized identifiers in the id arena */
	uint8_t id_len[2];
	size_t payload_off;                /* serialized RecordPayload in the payload arena */
	uint32_t payload_len;
	size_t uid_off;                    /* the local user id, in the id arena (never sent) */
	uint16_t uid_len;
};

/* A growable byte arena; `secret` arenas are wiped before they are freed or moved. */
struct pack_arena {
	unsigned char *p;
	size_t len, cap;
	int secret;
};

/*
 * Work is cut into tasks of PACK_TASK_ROWS rows (or records) for the worker
 * threads, and into windows of PACK_WINDOW_TASKS tasks: the main thread
 * reads (or plans) one window while the workers process the previous one,
 * then merges (or writes) the workers' outputs in input order, so the output
 * is the same whatever the thread count.
 */
#define PACK_TASK_ROWS 2048               /* unless pack_opts.task_rows says otherwise */
/*
 * 8 tasks: 4 per worker on 2 cores, and a window of 16k rows whose buffers
 * (two windows in flight, reused) stay small.  At 32, a million rows took
 * 100 MiB more peak memory, a quarter more page faults and 4-5% more CPU.
 */
#define PACK_WINDOW_TASKS 8

/* What one task made of its rows: the good ones, and the bad ones' messages, in input order. */
struct pack_out {
	struct pack_row *rows;
	size_t nrows, caprows;
	struct pack_arena ids;             /* secret */
	struct pack_arena payloads;
	struct pack_bad {
		uint32_t at;                   /* position within the task */
		struct cg_err e;
	} *bad;
	size_t nbad, capbad;
};

/* CSV rows as read, copied out of the reader for the workers. */
struct pack_raw {
	uint64_t line;
	uint32_t nfields;
	uint32_t first;                    /* first field in foff/flen */
	int32_t syntax;                    /* index in errs of the row's CSV syntax error, or -1 */
};

struct pack_window {
	struct pack_ctx *c;
	uint64_t rows_before;              /* data rows read before the window's first */
	struct pack_raw *rows;
	size_t nrows, caprows;
	struct pack_field {
		size_t off, len;               /* in text */
	} *fields;
	size_t nf, capf;
	struct pack_arena text;            /* secret: the cells, each NUL-terminated */
	struct cg_err *errs;
	size_t nerrs, caperrs;
	struct pack_out out[PACK_WINDOW_TASKS];
};

struct pack_ctx {
	const struct pack_opts *o;
	const struct policy_partner *pp;
	int *col_of_field;                 /* CSV field index -> schema column */
	size_t nheader;
	struct pack_row *rows;
	size_t nrows, caprows;
	struct pack_arena ids;             /* secret: normalized identifiers */
	struct pack_arena payloads;
	unsigned char dkey_key[crypto_shorthash_KEYBYTES];
	size_t task_rows;                  /* rows (records) per worker task */
	size_t rows_hint;                  /* rows the whole file likely holds (0: unknown), to size rows and arenas */
};

/* pack_read.c: the header, the rows, and the windows of rows the workers check. */
void pack_arena_free(struct pack_arena *a);
int pack_header(struct pack_ctx *c, const char *input, const struct csvfile_row *row, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3);
void pack_window_init(struct pack_window *w, struct pack_ctx *c);
void pack_window_free(struct pack_window *w);
/* One row as read, or (row NULL) its CSV syntax error; 0 or CG_ERR_NOMEM. */
int pack_window_add(struct pack_window *w, const struct csvfile_row *row, uint64_t line, const struct cg_err *syntax)
    CG_MUST_CHECK CG_NONNULL(1, 4);
void pack_window_reset(struct pack_window *w);
size_t pack_window_tasks(const struct pack_window *w);
/* A workers_fn: check the rows of one task of the window `arg`. */
int pack_parse_task(void *arg, size_t task, unsigned worker) CG_MUST_CHECK;
/* Append a checked window to c in input order, reporting its bad rows (pack.h); --strict fails at the first. */
int pack_merge(struct pack_ctx *c, struct pack_window *w, struct pack_stats *stats, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3);

#endif
