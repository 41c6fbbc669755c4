/* admit.c - see admit.h */
#include "gateway/admit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* A tracked source: its pre-auth connections and its penalty. */
struct admit_entry {
	int used;
	struct admit_source src;
	uint32_t preauth;                /* all its pre-auth connections ... */
	uint32_t tpre;                   /* ... of which in the trusted slots */
	int pen_active;                  /* the penalty reached ADMIT_PENALTY_MIN: refuse until pen_until */
	int64_t pen_until;               /* ms; <= now: no penalty */
	uint32_t strikes;                /* penalties served; remembered for penalty_max after the last */
};

struct admit {
	struct admit_config cfg;
	unsigned char key[crypto_shorthash_KEYBYTES];
	struct admit_entry *t;           /* ADMIT_SOURCES entries, linear probing */
	uint32_t n;                      /* entries in use */
	int64_t last_sweep;
	uint32_t preauth, tpre, authed;  /* common pre-auth, trusted pre-auth, authenticated */
	int64_t *log_at;                 /* times of the last log_per_min lines logged, a ring */
	uint32_t log_count, log_next;
	uint64_t log_suppressed;
};

#define ADMIT_MASK (ADMIT_SOURCES - 1)
#define ADMIT_HIGH (ADMIT_SOURCES / 4 * 3)   /* above this load, sweep; at it, stop inserting */

int
admit_new(const struct admit_config *cfg, struct admit **out, struct cg_err *err)
{
	struct admit *a;
	size_t i;

	*out = NULL;
	if (cfg->full == 0 || cfg->start > cfg->full || cfg->full > cfg->max_connections || cfg->rate > 100)
		return cg_err_set(err, CG_ERR_ARG, "admission: need start <= full <= max_connections and rate <= 100 "
		    "(start %u, rate %u, full %u, max_connections %u)", cfg->start, cfg->rate, cfg->full,
		    cfg->max_connections);
	if (cfg->trusted_startups > cfg->max_connections - cfg->full)
		return cg_err_set(err, CG_ERR_ARG, "admission: full (%u) + trusted_startups (%u) exceed max_connections (%u)",
		    cfg->full, cfg->trusted_startups, cfg->max_connections);
	if (cfg->log_per_min == 0 || cfg->log_per_min > ADMIT_LOG_MAX)
		return cg_err_set(err, CG_ERR_ARG, "admission: log_per_min must be 1 to %d (%u)", ADMIT_LOG_MAX,
		    cfg->log_per_min);
	if (cfg->ntrusted > ADMIT_TRUSTED_MAX)
		return cg_err_set(err, CG_ERR_ARG, "admission: more than %d trusted networks", ADMIT_TRUSTED_MAX);
	for (i = 0; i < cfg->ntrusted; i++)
		if (cfg->trusted[i].bits > 128)
			return cg_err_set(err, CG_ERR_ARG, "admission: trusted network %zu: prefix of %u bits",
			    i + 1, cfg->trusted[i].bits);
	if ((a = calloc(1, sizeof(*a))) == NULL || (a->t = calloc(ADMIT_SOURCES, sizeof(*a->t))) == NULL ||
	    (a->log_at = calloc(cfg->log_per_min, sizeof(*a->log_at))) == NULL) {
		if (a != NULL)
			free(a->t);
		free(a);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	a->cfg = *cfg;
	a->last_sweep = INT64_MIN;
	crypto_shorthash_keygen(a->key);
	*out = a;
	return 0;
}

void
admit_free(struct admit *a)
{
	if (a == NULL)
		return;
	free(a->t);
	free(a->log_at);
	free(a);
}

void
admit_source_of(const struct sockaddr *sa, socklen_t len, struct admit_source *src, char text[ADMIT_ADDR_MAX])
{
	char host[INET6_ADDRSTRLEN];

	memset(src, 0, sizeof(*src));
	snprintf(text, ADMIT_ADDR_MAX, "?");
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		src->b[10] = src->b[11] = 0xff;          /* v4-mapped, so that both families share one table */
		memcpy(src->b + 12, &in->sin_addr, 4);
		if (inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)) != NULL)
			snprintf(text, ADMIT_ADDR_MAX, "%s:%u", host, (unsigned)ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		memcpy(src->b, &in6->sin6_addr, 16);
		/* One IPv6 host usually owns a whole /64: count the /64, or it could use 2^64 sources. */
		if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			memset(src->b + 8, 0, 8);
		if (inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)) != NULL)
			snprintf(text, ADMIT_ADDR_MAX, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
	}
}

static uint32_t
admit_home(const struct admit *a, const struct admit_source *src)
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, src->b, sizeof(src->b), a->key);
	memcpy(&v, h, sizeof(v));
	return (uint32_t)(v & ADMIT_MASK);
}

static struct admit_entry *
admit_find(struct admit *a, const struct admit_source *src)
{
	uint32_t i = admit_home(a, src);

	while (a->t[i].used) {
		if (memcmp(a->t[i].src.b, src->b, sizeof(src->b)) == 0)
			return &a->t[i];
		i = (i + 1) & ADMIT_MASK;
	}
	return NULL;
}

/* Remove entry e (linear probing: shift back the entries of its cluster that it displaced). */
static void
admit_remove(struct admit *a, struct admit_entry *e)
{
	uint32_t i = (uint32_t)(e - a->t), j = i, k;

	a->t[i].used = 0;
	a->n--;
	for (;;) {
		j = (j + 1) & ADMIT_MASK;
		if (!a->t[j].used)
			break;
		k = admit_home(a, &a->t[j].src);
		/* t[j] may move to the hole at i unless its home lies cyclically in (i, j]. */
		if ((i <= j) ? (k <= i || k > j) : (k <= i && k > j)) {
			a->t[i] = a->t[j];
			a->t[j].used = 0;
			i = j;
		}
	}
}

/* Nothing to remember: no connection, no penalty, and no strike within the last penalty_max. */
static int
admit_idle(const struct admit *a, const struct admit_entry *e, int64_t now)
{
	return e->preauth == 0 && e->pen_until <= now &&
	    (e->strikes == 0 || now - e->pen_until >= (int64_t)a->cfg.penalty_max * 1000);
}

/* Drop every idle entry (at most once a second: a full table of penalised sources stays full). */
static void
admit_sweep(struct admit *a, int64_t now)
{
	uint32_t i;

	if (a->last_sweep != INT64_MIN && now - a->last_sweep < 1000)
		return;
	a->last_sweep = now;
	for (i = 0; i < ADMIT_SOURCES; i++)
		while (a->t[i].used && admit_idle(a, &a->t[i], now))
			admit_remove(a, &a->t[i]);   /* the shift may bring another idle entry to i */
}

/* The entry of src, made if missing; NULL if the table is full (then src is not tracked). */
static struct admit_entry *
admit_get(struct admit *a, const struct admit_source *src, int64_t now)
{
	struct admit_entry *e = admit_find(a, src);
	uint32_t i;

	if (e != NULL)
		return e;
	if (a->n >= ADMIT_HIGH)
		admit_sweep(a, now);
	if (a->n >= ADMIT_HIGH)
		return NULL;
	i = admit_home(a, src);
	while (a->t[i].used)
		i = (i + 1) & ADMIT_MASK;
	memset(&a->t[i], 0, sizeof(a->t[i]));
	a->t[i].used = 1;
	a->t[i].src = *src;
	a->t[i].pen_until = 0;
	a->n++;
	return &a->t[i];
}

void
admit_penalise(struct admit *a, const struct admit_source *src, enum admit_offence off, int64_t now_ms)
{
	struct admit_entry *e;
	uint32_t secs = off == ADMIT_OFF_TIMEOUT ? ADMIT_PENALTY_TIMEOUT :
	    off == ADMIT_OFF_FAILED ? ADMIT_PENALTY_FAILED : ADMIT_PENALTY_OVER;
	int64_t cap;

	if (a->cfg.penalty_max == 0 || (e = admit_get(a, src, now_ms)) == NULL)
		return;
	if (e->pen_until <= now_ms) {            /* expired or none: start afresh */
		e->pen_until = now_ms;
		e->pen_active = 0;
	}
	cap = now_ms + (int64_t)a->cfg.penalty_max * 1000;
	e->pen_until += (int64_t)secs * 1000;
	if (!e->pen_active && e->pen_until - now_ms >= (int64_t)ADMIT_PENALTY_MIN * 1000) {
		/* a repeat offender serves longer each time: the minimum, doubled per earlier penalty */
		e->pen_active = 1;
		if (e->strikes < 30)
			e->strikes++;
		if (e->pen_until - now_ms < ((int64_t)ADMIT_PENALTY_MIN * 1000) << (e->strikes - 1))
			e->pen_until = now_ms + (((int64_t)ADMIT_PENALTY_MIN * 1000) << (e->strikes - 1));
	}
	if (e->pen_until > cap)
		e->pen_until = cap;
}

int
admit_trusted(const struct admit *a, const struct admit_source *src)
{
	size_t i;

	for (i = 0; i < a->cfg.ntrusted; i++) {
		const struct admit_prefix *p = &a->cfg.trusted[i];
		unsigned whole = p->bits / 8, rest = p->bits % 8;

		if (memcmp(src->b, p->b, whole) != 0)
			continue;
		if (rest == 0 || ((src->b[whole] ^ p->b[whole]) & (0xffu << (8 - rest)) & 0xffu) == 0)
			return 1;
	}
	return 0;
}

enum admit_verdict
admit_check(struct admit *a, const struct admit_source *src, int64_t now_ms, uint32_t rnd)
{
	struct admit_entry *e;
	uint32_t p;

	if (a->preauth + a->tpre + a->authed >= a->cfg.max_connections)
		return ADMIT_BUSY;
	e = admit_find(a, src);
	if (e != NULL && e->pen_active && e->pen_until > now_ms) {
		/* knocking while penalised is another offence: a flood keeps itself out */
		admit_penalise(a, src, ADMIT_OFF_OVER, now_ms);
		return ADMIT_PENALTY;
	}
	if (a->cfg.per_source > 0 && e != NULL && e->preauth >= a->cfg.per_source) {
		admit_penalise(a, src, ADMIT_OFF_OVER, now_ms);
		return ADMIT_SOURCE;
	}
	/* a trusted source takes a slot of its own while there is one (an untracked source, table full,
	 * could not give it back: it competes for the common slots) */
	if (a->tpre < a->cfg.trusted_startups && admit_trusted(a, src) && (e = admit_get(a, src, now_ms)) != NULL) {
		e->preauth++;
		e->tpre++;
		a->tpre++;
		return ADMIT_OK;
	}
	if (a->preauth >= a->cfg.full)
		return ADMIT_STARTUPS;
	if (a->preauth >= a->cfg.start) {
		/* start < preauth < full here (start == full was refused above) */
		p = a->cfg.rate + (100 - a->cfg.rate) * (a->preauth - a->cfg.start) / (a->cfg.full - a->cfg.start);
		if ((uint32_t)(((uint64_t)rnd * 100) >> 32) < p)
			return ADMIT_STARTUPS;
	}
	if ((e = admit_get(a, src, now_ms)) != NULL)
		e->preauth++;
	a->preauth++;
	return ADMIT_OK;
}

/* One pre-auth connection of src less (an untracked one leaves no per-source count to lower). */
static void
admit_preauth_done(struct admit *a, const struct admit_source *src)
{
	struct admit_entry *e = admit_find(a, src);

	/* a source's connections are interchangeable: give back a trusted slot first */
	if (e != NULL && e->tpre > 0) {
		e->tpre--;
		if (a->tpre > 0)
			a->tpre--;
	} else if (a->preauth > 0)
		a->preauth--;
	if (e != NULL && e->preauth > 0)
		e->preauth--;
	/* a penalty runs on in its entry; only an idle one is forgotten (time 0: any penalty keeps it) */
	if (e != NULL && e->preauth == 0 && e->pen_until <= 0)
		admit_remove(a, e);
}

void
admit_authenticated(struct admit *a, const struct admit_source *src)
{
	admit_preauth_done(a, src);
	a->authed++;
}

void
admit_release(struct admit *a, const struct admit_source *src, int authenticated)
{
	if (authenticated) {
		if (a->authed > 0)
			a->authed--;
	} else
		admit_preauth_done(a, src);
}

uint32_t
admit_preauth(const struct admit *a)
{
	return a->preauth;
}

uint32_t
admit_preauth_trusted(const struct admit *a)
{
	return a->tpre;
}

uint32_t
admit_authed(const struct admit *a)
{
	return a->authed;
}

uint32_t
admit_penalty_left(struct admit *a, const struct admit_source *src, int64_t now_ms)
{
	struct admit_entry *e = admit_find(a, src);

	if (e == NULL || e->pen_until <= now_ms)
		return 0;
	return (uint32_t)((e->pen_until - now_ms + 999) / 1000);
}

/*
 * A sliding minute, not a calendar one: windows of fixed minutes would let
 * 60 lines close one window and 60 more open the next, 120 within a
 * minute.  A line is logged when fewer than log_per_min were in the 60 s
 * before it, i.e. when the oldest of the last log_per_min is that old.
 */
int
admit_log_ok(struct admit *a, int64_t now_ms, uint64_t *suppressed)
{
	*suppressed = 0;
	if (a->log_count == a->cfg.log_per_min && now_ms - a->log_at[a->log_next] < 60000) {
		a->log_suppressed++;
		return 0;
	}
	if (a->log_count < a->cfg.log_per_min)
		a->log_count++;
	a->log_at[a->log_next] = now_ms;
	a->log_next = (a->log_next + 1) % a->cfg.log_per_min;
	*suppressed = a->log_suppressed;
	a->log_suppressed = 0;
	return 1;
}

const char *
admit_verdict_name(enum admit_verdict v)
{
	switch (v) {
	case ADMIT_OK:
		return "admitted";
	case ADMIT_BUSY:
		return "max_connections in use";
	case ADMIT_STARTUPS:
		return "too many unauthenticated connections (max_startups)";
	case ADMIT_SOURCE:
		return "too many unauthenticated connections from this source (per_source_max)";
	case ADMIT_PENALTY:
		return "source penalised for earlier failed or timed-out handshakes";
	}
	return "?";
}
