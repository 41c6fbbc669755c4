/*
 * monitor.h - privilege separation for `crossgate gateway serve`, after
 * OpenSSH's monitor: the process that loaded the gateway's keys forks; the
 * parent (the monitor) keeps the keys, serves a socketpair and restarts the
 * child when it dies; the child (the network worker) wipes every key, then
 * runs the server (TLS, frames, batches, SQLite) with key handles
 * (crypto/keyfile.h struct keyfile_agent) whose operations are requests to
 * the monitor: open a batch key sealed to the gateway, seal or open a batch
 * key at rest, compute tombstones, sign an audit checkpoint, compute an
 * audience refusal test's HMAC.  The protocol
 * is proto/monitor.proto; docs/DESIGN.md "Process model" says what each side
 * holds and why SQLite stays with the worker.
 *
 * Ownership: monitor_client_new() takes fd; monitor_client_free() closes it.
 * Errors: 0 or a negative CG_ERR_*, with err set; a refusal by the monitor
 * keeps the monitor's code and reason ("monitor: ...").
 */
#ifndef CG_MONITOR_H
#define CG_MONITOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include "base/err.h"
#include "crypto/keyfile.h"

#define MONITOR_MSG_MAX (64 * 1024)      /* a request or a response, length prefix excluded */
/* A worker that dies this soon after its start, this many times in a row, is not restarted again. */
#define MONITOR_FAST_DEATH_SECONDS 2
#define MONITOR_FAST_DEATHS_MAX 5

/* The keys: the real ones in the monitor, handles (key == NULL, agent set) in the worker. */
struct monitor_keys {
	const struct keyfile_key *enc;       /* X25519 secret: batch keys are sealed to it */
	const struct keyfile_key *sign;      /* Ed25519 secret: the audit log's checkpoints */
	const struct keyfile_key *storage;   /* storage key: batch keys at rest, tombstones */
};

/*
 * The monitor's answer to one request (the bytes after the length prefix):
 * *resp (malloc'd, *resp_len bytes) is a MonitorResponse, a refusal when the
 * request is not valid (*refused = 1 then).  Fails only for lack of memory.
 */
int monitor_answer(const struct monitor_keys *k, const unsigned char *req, size_t len, unsigned char **resp,
    size_t *resp_len, int *refused) CG_MUST_CHECK CG_NONNULL(1, 4, 5, 6);

/*
 * Answer requests on fd until the worker closes it (0).  A frame longer than
 * MONITOR_MSG_MAX, or empty, ends the session (CG_ERR_FORMAT): the worker is
 * then killed and restarted by monitor_run.  Requests are counted in *served.
 */
int monitor_serve(const struct monitor_keys *k, int fd, uint64_t *served, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 3);

/* The worker's side: handles on the monitor's keys (type, id and pub copied from `real`'s public parts). */
struct monitor_client;
int monitor_client_new(int fd, const struct keyfile_key *enc, const struct keyfile_key *sign,
    const struct keyfile_key *storage, struct monitor_client **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(2, 3, 4, 5);
/* Handles valid until monitor_client_free(); requests are serialized (threads may share the client). */
void monitor_client_keys(const struct monitor_client *c, struct monitor_keys *out) CG_NONNULL(1, 2);
void monitor_client_free(struct monitor_client *c);

/*
 * Run `worker` in a child process, as the monitor of it, until it exits.
 * In the child: `wipe(arg)` frees every key (the keys in k stay valid until
 * then; nothing but handles remains after it), the child dies with the
 * monitor (PR_SET_PDEATHSIG), then `worker(handles, restarts, arg)` runs
 * and its result is the child's exit status.  In the monitor: requests are
 * answered; a worker killed by a signal is restarted (restarts counts them),
 * unless it died within MONITOR_FAST_DEATH_SECONDS of its start
 * MONITOR_FAST_DEATHS_MAX times in a row or a stop was asked.  SIGTERM and
 * SIGINT to the monitor are passed to the worker, which stops cleanly (a
 * worker that the passed signal kills before it has its handlers counts as
 * stopped: it served nothing yet).  `log` gets one JSON line per restart.
 * Returns the last worker's exit status (0: stopped cleanly), or 1 with err
 * set.
 */
/*
 * One JSON line on log, as the server's (time, level, event), then pairs of
 * const char *key and json_t *value (stolen), ending with NULL.
 */
void monitor_log(FILE *log, const char *level, const char *event, ...) CG_NONNULL(1, 2, 3);

typedef int (*monitor_worker_fn)(const struct monitor_keys *handles, unsigned restarts, void *arg);
int monitor_run(const struct monitor_keys *k, monitor_worker_fn worker, void (*wipe)(void *), void *arg, FILE *log,
    struct cg_err *err) CG_NONNULL(1, 2, 3, 5);

#endif
