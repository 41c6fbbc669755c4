/*
 * admit.h - who may start a connection: the gateway's pre-authentication
 * capacity, kept apart from its authenticated capacity, in the manner of
 * OpenSSH's MaxStartups and PerSourceMaxStartups/PerSourcePenalties.
 *
 * A connection is "pre-auth" from accept() until its TLS handshake has
 * verified a certificate naming a principal of the policy; then it is
 * "authenticated".  Admission at accept():
 *   - all connections together stay under max_connections (busy);
 *   - pre-auth connections never exceed `full` (policy_load keeps it below
 *     max_connections), so the remaining slots are reserved for
 *     authenticated principals;
 *   - between `start` and `full` pre-auth connections a new one is dropped
 *     with probability rate% rising linearly to 100% (random early drop:
 *     a flood cannot tell which connection will be kept);
 *   - one source (an IPv4 address, an IPv6 /64) holds at most `per_source`
 *     pre-auth connections (0: no per-source limit);
 *   - a source that offends (a handshake past its deadline, a failed
 *     handshake, a connection over its per-source limit, a connection while
 *     penalised) accrues penalty seconds; once its penalty reaches
 *     ADMIT_PENALTY_MIN it is refused at once until the penalty expires, up
 *     to `penalty_max` seconds ahead (0: no penalties).  Each penalty of a
 *     repeat offender lasts at least twice the one before (15, 30, 60 s...),
 *     and a source's record of penalties is forgotten penalty_max seconds
 *     after its last one.
 *   - sources in the operator's trusted networks (the partners' egress
 *     addresses, policy `trusted_sources`) have `trusted_startups` pre-auth
 *     slots of their own, outside `full` and the early drop: a flood from
 *     anywhere else cannot take them.  When they are all in use, a trusted
 *     source competes for the common slots like any other.  Its per-source
 *     limit and its penalties still apply.
 * Sources are tracked in a table of ADMIT_SOURCES entries, hashed with a
 * per-process SipHash key (an attacker choosing addresses cannot make
 * lookups slow).  When it is full, an untracked source is admitted under the
 * global limits only (as OpenSSH's "permissive" overflow mode).
 *
 * Refusal log lines go through admit_log_ok(): at most `log_per_min` in
 * any 60 s, the rest counted and reported with the next line logged.
 *
 * Not thread-safe: the server calls it under its own mutex.  Time is passed
 * in (monotonic milliseconds) and so is randomness, so that tests are exact.
 */
#ifndef CG_ADMIT_H
#define CG_ADMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "base/err.h"

#define ADMIT_SOURCES 8192u
#define ADMIT_PENALTY_MIN 15u           /* seconds of penalty before a source is refused */
#define ADMIT_PENALTY_TIMEOUT 10u       /* a handshake that ran out of time */
#define ADMIT_PENALTY_FAILED 5u         /* a handshake that failed, or a certificate naming nobody */
#define ADMIT_PENALTY_OVER 1u           /* a connection over the source's pre-auth limit */
#define ADMIT_ADDR_MAX 64               /* "[v6]:port" text */

/* A source: the IPv4 address (as v4-mapped IPv6) or the IPv6 /64. */
struct admit_source {
	unsigned char b[16];
};

#define ADMIT_TRUSTED_MAX 64
#define ADMIT_LOG_MAX 100000

/* A trusted network: the first `bits` bits of b (an IPv4 /n is v4-mapped: 96 + n). */
struct admit_prefix {
	unsigned char b[16];
	unsigned bits;                  /* 0..128; an IPv6 prefix longer than 64 can only name one /64 */
};

struct admit_config {
	uint32_t max_connections;
	uint32_t start, rate, full;     /* rate in percent */
	uint32_t per_source;            /* 0: none */
	uint32_t penalty_max;           /* seconds; 0: no penalties */
	uint32_t log_per_min;
	uint32_t trusted_startups;      /* pre-auth slots of the trusted networks; 0: none */
	size_t ntrusted;
	struct admit_prefix trusted[ADMIT_TRUSTED_MAX];
};

enum admit_verdict {
	ADMIT_OK = 0,
	ADMIT_BUSY,          /* max_connections in use */
	ADMIT_STARTUPS,      /* random early drop, or `full` pre-auth connections */
	ADMIT_SOURCE,        /* the source's pre-auth limit */
	ADMIT_PENALTY,       /* the source is serving a penalty */
};

enum admit_offence {
	ADMIT_OFF_TIMEOUT,
	ADMIT_OFF_FAILED,
	ADMIT_OFF_OVER,
};

struct admit;

/* Checks start <= full <= max_connections (policy_load keeps full below it), full + trusted_startups <=
 * max_connections, rate <= 100 and the trusted prefixes (CG_ERR_ARG says which). */
int admit_new(const struct admit_config *cfg, struct admit **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);
void admit_free(struct admit *a);

/* The source of a peer address, and "ADDR:PORT" text for logs ("?" if not IP). */
void admit_source_of(const struct sockaddr *sa, socklen_t len, struct admit_source *src,
    char text[ADMIT_ADDR_MAX]) CG_NONNULL(3, 4);

/*
 * May a new connection from src start?  On ADMIT_OK it is counted as
 * pre-auth (until admit_authenticated or admit_release).  `rnd` is a uniform
 * random 32-bit value for the early drop.  A refusal over the per-source
 * limit also penalises the source.
 */
enum admit_verdict admit_check(struct admit *a, const struct admit_source *src, int64_t now_ms, uint32_t rnd)
    CG_NONNULL(1, 2);
/* The connection proved a principal: it leaves the pre-auth count. */
void admit_authenticated(struct admit *a, const struct admit_source *src) CG_NONNULL(1, 2);
/* The connection ended (`authenticated` as told to admit_authenticated). */
void admit_release(struct admit *a, const struct admit_source *src, int authenticated) CG_NONNULL(1, 2);
void admit_penalise(struct admit *a, const struct admit_source *src, enum admit_offence off, int64_t now_ms)
    CG_NONNULL(1, 2);

/* Is src in a trusted network? */
int admit_trusted(const struct admit *a, const struct admit_source *src) CG_NONNULL(1, 2);

/* Counts, for logs and tests: pre-auth connections in the common slots, in the trusted slots, authenticated. */
uint32_t admit_preauth(const struct admit *a) CG_NONNULL(1);
uint32_t admit_preauth_trusted(const struct admit *a) CG_NONNULL(1);
uint32_t admit_authed(const struct admit *a) CG_NONNULL(1);
/* Seconds of penalty src still serves (0: none or expired). */
uint32_t admit_penalty_left(struct admit *a, const struct admit_source *src, int64_t now_ms) CG_NONNULL(1, 2);

/* May a refusal line be logged now?  If so, *suppressed is how many were not since the last one. */
int admit_log_ok(struct admit *a, int64_t now_ms, uint64_t *suppressed) CG_NONNULL(1, 3);

const char *admit_verdict_name(enum admit_verdict v);

#endif
