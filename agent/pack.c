/* pack.c - see pack.h */
#include "agent/pack_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#include "base/csvfile.h"
#include "agent/sealer.h"
#include "agent/receipt.h"
#include "agent/state.h"
#include "base/workers.h"
#include "crypto/merkle.h"
#include "crypto/seal.h"
#include "crypto/token.h"
#include "proto/batch.h"

static uint32_t
pack_find(struct pack_row *rows, uint32_t i)
{
	while (rows[i].parent != i) {
		rows[i].parent = rows[rows[i].parent].parent;
		i = rows[i].parent;
	}
	return i;
}

/* Is row a newer than row b?  Later consent_at wins; on a tie, the later line. */
static int
pack_newer(const struct pack_row *a, const struct pack_row *b)
{
	if (a->consent_at != b->consent_at)
		return a->consent_at > b->consent_at;
	return a->line > b->line;
}

/*
 * Group rows by key (the normalized email, or the phone of a row without an
 * email), then point every row at the newest row of its group; *dups counts
 * the others.
 */
static int
pack_dedupe(struct pack_ctx *c, uint64_t *dups, struct cg_err *err)
{
	size_t cap = 16, i, mask, k;
	uint32_t *table, *winner = NULL;
	int r = 0;

	*dups = 0;
	while (cap < c->nrows * 2 + 16)
		cap *= 2;
	mask = cap - 1;
	if ((table = malloc(cap * sizeof(*table))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	for (k = 0; k < 2; k++) {                 /* one table per key kind */
		memset(table, 0xff, cap * sizeof(*table));
		for (i = 0; i < c->nrows; i++) {
			const struct pack_row *ri = &c->rows[i];
			size_t slot;
			/* A row's key is its email, else its phone: a shared phone never merges two emails (join.h). */
			if (!ri->has_id[k] || (k == 1 && ri->has_id[0]))
				continue;
			for (slot = ri->dhash[k] & mask;; slot = (slot + 1) & mask) {
				uint32_t o = table[slot];
				const struct pack_row *ro;
				if (o == UINT32_MAX) {
					table[slot] = (uint32_t)i;
					break;
				}
				ro = &c->rows[o];
				if (ro->dhash[k] == ri->dhash[k] && ro->id_len[k] == ri->id_len[k] &&
				    memcmp(c->ids.p + ro->id_off[k], c->ids.p + ri->id_off[k], ri->id_len[k]) == 0) {
					uint32_t a = pack_find(c->rows, o), b = pack_find(c->rows, (uint32_t)i);
					if (a != b)
						c->rows[a].parent = b;
					break;
				}
			}
		}
	}
	/* winner[root] = newest member */
	if ((winner = malloc(c->nrows * sizeof(*winner) + 1)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < c->nrows; i++)
		winner[i] = UINT32_MAX;
	for (i = 0; i < c->nrows; i++) {
		uint32_t root = pack_find(c->rows, (uint32_t)i);
		if (winner[root] == UINT32_MAX || pack_newer(&c->rows[i], &c->rows[winner[root]]))
			winner[root] = (uint32_t)i;
	}
	/* From here on, parent is the group's winner: a row is written iff parent == itself. */
	for (i = 0; i < c->nrows; i++) {
		uint32_t w = winner[pack_find(c->rows, (uint32_t)i)];
		if (w != i)
			(*dups)++;
		winner[i] = w;
	}
	for (i = 0; i < c->nrows; i++)
		c->rows[i].parent = winner[i];
out:
	free(winner);
	free(table);
	return r;
}

/* The tokens of a row's identifiers (email first), into toks; *nt of them. */
static int
pack_tokens(const struct pack_ctx *c, struct token_hasher *h, const struct pack_row *pr, struct token toks[2],
    size_t *nt, struct cg_err *err)
{
	*nt = 0;
	for (int k = 0; k < 2; k++) {
		if (!pr->has_id[k])
			continue;
		toks[*nt].kind = k == 0 ? TOKEN_KIND_EMAIL : TOKEN_KIND_PHONE;
		if (token_hasher_compute(h, toks[*nt].kind, (const char *)c->ids.p + pr->id_off[k], pr->id_len[k],
		    toks[*nt].value) != 0)
			return cg_err_set(err, CG_ERR_CRYPTO, "cannot compute token");
		(*nt)++;
	}
	return 0;
}

/* Point the wire tokens at toks (which must outlive the record). */
static void
pack_wire_tokens(const struct token *toks, size_t nt, Crossgate__Token tok[2], Crossgate__Token *tokp[2])
{
	for (size_t k = 0; k < nt; k++) {
		crossgate__token__init(&tok[k]);
		tok[k].kind = (Crossgate__IdKind)toks[k].kind;
		tok[k].value.data = (uint8_t *)toks[k].value;
		tok[k].value.len = TOKEN_LEN;
		tokp[k] = &tok[k];
	}
}

/* One task's record frames, encoded for batch_writer_add_encoded, in index order. */
struct pack_sealed {
	unsigned char *buf;
	size_t len, cap;
	uint64_t count;
	int rc;
	struct cg_err err;
};

/*
 * Seal pt (plen bytes; ct holds plen + SEAL_TAG_LEN) as record `index` of
 * the row's user with consent `bits`, the row's consent time and these
 * tokens, and append its frame to out.
 */
static int
pack_record_add(const struct pack_ctx *c, const struct sealer *sl, struct pack_sealed *out, uint64_t index,
    const struct pack_row *pr, uint32_t bits, const struct token *toks, size_t nt, const unsigned char *pt,
    size_t plen, unsigned char *ct, int withdrawal, struct cg_err *err)
{
	Crossgate__SealedRecord rec = CROSSGATE__SEALED_RECORD__INIT;
	Crossgate__Token tok[2], *tokp[2];
	unsigned char ad[SEAL_AD_MAX];
	size_t ad_len;
	int r;

	if ((r = seal_ad_build(ad, &ad_len, sl->batch_id, c->pp->id, index, bits, pr->consent_at, toks, nt)) != 0 ||
	    (r = seal_record(sl->key, index, ad, ad_len, pt, plen, ct)) != 0)
		return cg_err_set(err, r, "cannot seal record");
	pack_wire_tokens(toks, nt, tok, tokp);
	rec.index = index;
	rec.tokens = tokp;
	rec.n_tokens = nt;
	rec.consent_bits = bits;
	rec.consent_at = pr->consent_at;
	rec.ciphertext.data = ct;
	rec.ciphertext.len = plen + SEAL_TAG_LEN;
	rec.withdrawal = withdrawal;
	return batch_record_append(&rec, &out->buf, &out->cap, &out->len, err);
}

/*
 * A withdrawal record (proto/crossgate.proto SealedRecord.withdrawal): the
 * consent bits left at the gateway (0 when the user lost match) and the
 * row's time, the tokens the gateway holds for the user, and the sealed
 * Withdrawal (what was withdrawn, the receipt leaf if any).
 */
static int
pack_withdrawal(const struct pack_ctx *c, const struct sealer *sl, struct pack_sealed *out, uint64_t index,
    const struct pack_row *pr, uint32_t bits, const struct token *toks, size_t nt, uint32_t withdrawn,
    const unsigned char *leaf, struct cg_err *err)
{
	Crossgate__Withdrawal w = CROSSGATE__WITHDRAWAL__INIT;
	unsigned char pt[64], ct[64 + SEAL_TAG_LEN];
	size_t plen;

	w.withdrawn = withdrawn;
	if (leaf != NULL) {
		w.receipt_leaf.data = (uint8_t *)leaf;
		w.receipt_leaf.len = MERKLE_HASH_LEN;
	}
	if ((plen = crossgate__withdrawal__get_packed_size(&w)) > sizeof(pt))
		return cg_err_set(err, CG_ERR_LIMIT, "withdrawal record too large");
	crossgate__withdrawal__pack(&w, pt);
	return pack_record_add(c, sl, out, index, pr, bits, toks, nt, pt, plen, ct, 1, err);
}

/* The same tokens, in the same order (both sorted by kind)? */
static int
pack_same_tokens(const struct token *a, size_t na, const struct token *b, size_t nb)
{
	size_t i;

	if (na != nb)
		return 0;
	for (i = 0; i < na; i++)
		if (a[i].kind != b[i].kind || sodium_memcmp(a[i].value, b[i].value, TOKEN_LEN) != 0)
			return 0;
	return 1;
}

/*
 * What the agent remembers having sent for the row's user id: *known = 1
 * with the tokens, the consent bits and time.  A state file of an older
 * version remembers tokens only: then every purpose counts as sent.
 */
static int
pack_remembered(struct pack_ctx *c, struct agent_state *state, const struct pack_row *pr, uint32_t all,
    struct token prev[2], size_t *nprev, uint32_t *bits, int64_t *at, int *known, struct cg_err *err)
{
	const char *uid = (const char *)c->ids.p + pr->uid_off;
	int r, found;

	*known = 0;
	*nprev = 0;
	if ((r = agent_state_lookup(state, c->pp->id, uid, pr->uid_len, prev, nprev, bits, at, &found, err)) != 0 ||
	    *nprev == 0)
		return r;
	if (!found) {
		*bits = all;
		*at = INT64_MIN;
	}
	*known = 1;
	return 0;
}

/* The receipt leaf of a withdrawal (NULL without --receipts): the row's email, else its phone. */
static int
pack_receipt(struct pack_ctx *c, struct receipt_batch *rb, const struct pack_row *pr, uint32_t withdrawn,
    unsigned char leaf[RECEIPT_LEAF_LEN], const unsigned char **out, struct cg_err *err)
{
	int k = pr->has_id[0] ? 0 : 1;
	int r;

	*out = NULL;
	if (rb == NULL)
		return 0;
	if ((r = receipt_batch_add(rb, pr->uid_len ? (const char *)c->ids.p + pr->uid_off : NULL, pr->uid_len, pr->line,
	    k == 0 ? TOKEN_KIND_EMAIL : TOKEN_KIND_PHONE, (const char *)c->ids.p + pr->id_off[k], pr->id_len[k],
	    withdrawn, pr->consent_at, leaf, err)) != 0)
		return r;
	*out = leaf;
	return 0;
}

/* One record to seal, as the main thread planned it, in index order. */
struct pack_job {
	uint64_t index;
	uint32_t row;
	uint32_t bits;                     /* the consent bits the record carries */
	uint32_t withdrawn;                /* a withdrawal's purposes withdrawn */
	uint8_t withdrawal;
	uint8_t have_toks;                 /* toks set by the plan (remembered, or needed for the state) */
	uint8_t has_leaf;
	uint8_t nt;
	struct token toks[2];
	unsigned char leaf[RECEIPT_LEAF_LEN];
};

struct pack_seal_window {
	const struct pack_ctx *c;
	const struct sealer *sl;
	struct token_hasher **hashers;     /* one per worker */
	struct pack_job *jobs;             /* task_rows * PACK_WINDOW_TASKS */
	size_t njobs;
	struct pack_sealed out[PACK_WINDOW_TASKS];
};

/* The sequential part of writing: decisions that need the state file or the receipts, in row order. */
struct pack_plan {
	struct pack_ctx *c;
	struct pack_stats *stats;
	struct agent_state *state;
	struct receipt_batch *rb;
	struct token_hasher *h;            /* the main thread's */
	uint32_t match_bit, all;
	uint64_t index, packed;
	size_t next;                       /* the next row to plan */
};

static size_t
pack_seal_tasks(const struct pack_seal_window *sw)
{
	return (sw->njobs + sw->c->task_rows - 1) / sw->c->task_rows;
}

/* Worker: tokenize and seal one task's records, and encode their frames. */
static int
pack_seal_task(void *arg, size_t task, unsigned worker)
{
	struct pack_seal_window *sw = arg;
	const struct pack_ctx *c = sw->c;
	struct pack_sealed *o = &sw->out[task];
	unsigned char ct[8192 + SEAL_TAG_LEN];
	struct token toks[2];
	size_t i, nt, end = (task + 1) * sw->c->task_rows;
	int r = 0;

	o->len = 0;
	o->count = 0;
	cg_err_clear(&o->err);
	if (end > sw->njobs)
		end = sw->njobs;
	for (i = task * sw->c->task_rows; i < end; i++) {
		const struct pack_job *j = &sw->jobs[i];
		const struct pack_row *pr = &c->rows[j->row];

		if (j->have_toks) {
			memcpy(toks, j->toks, sizeof(toks));
			nt = j->nt;
		} else if ((r = pack_tokens(c, sw->hashers[worker], pr, toks, &nt, &o->err)) != 0) {
			break;
		}
		if (j->withdrawal)
			r = pack_withdrawal(c, sw->sl, o, j->index, pr, j->bits, toks, nt, j->withdrawn,
			    j->has_leaf ? j->leaf : NULL, &o->err);
		else
			r = pack_record_add(c, sw->sl, o, j->index, pr, j->bits, toks, nt, c->payloads.p + pr->payload_off,
			    pr->payload_len, ct, 0, &o->err);
		if (r != 0)
			break;
		o->count++;
	}
	sodium_memzero(toks, sizeof(toks));
	o->rc = r;
	return r;
}

/* Wait for the window's sealing; the message of the first task that failed. */
static int
pack_seal_wait(struct workers *pool, struct pack_seal_window *sw, struct cg_err *err)
{
	size_t t, ntasks = pack_seal_tasks(sw);

	if (workers_wait(pool) == 0)
		return 0;
	for (t = 0; t < ntasks; t++)
		if (sw->out[t].rc != 0) {
			*err = sw->out[t].err;
			return sw->out[t].rc;
		}
	return cg_err_set(err, CG_ERR_INTERNAL, "a worker failed without a message");
}

static int
pack_seal_write(struct pack_seal_window *sw, struct sealer *sl, struct cg_err *err)
{
	size_t t, ntasks = pack_seal_tasks(sw);
	int r;

	for (t = 0; t < ntasks; t++)
		if ((r = batch_writer_add_encoded(sl->w, sw->out[t].buf, sw->out[t].len, sw->out[t].count, err)) != 0)
			return r;
	return 0;
}

static struct pack_job *
pack_job_next(struct pack_seal_window *sw, struct pack_plan *p, uint32_t row)
{
	struct pack_job *j = &sw->jobs[sw->njobs++];

	memset(j, 0, sizeof(*j));
	j->row = row;
	j->index = p->index++;
	return j;
}

/*
 * Plan the records of the rows from p->next on into sw, until the window
 * is full: which rows give a data record, a withdrawal or a narrowing
 * withdrawal, with their indexes, receipts and state updates.  Tokens are
 * left to the workers unless the state needs them here.
 */
static int
pack_plan(struct pack_plan *p, struct pack_seal_window *sw, struct cg_err *err)
{
	struct pack_ctx *c = p->c;
	struct pack_stats *stats = p->stats;
	struct agent_state *state = p->state;
	struct token toks[2], prev[2];
	const unsigned char *leafp;
	uint32_t prev_bits = 0, lost;
	int64_t prev_at = 0;
	size_t nt = 0, nprev = 0;
	int r = 0, known, keyed, need;

	for (; p->next < c->nrows && sw->njobs + 2 <= c->task_rows * PACK_WINDOW_TASKS; p->next++) {
		size_t i = p->next;
		struct pack_row *pr = &c->rows[i];
		const char *uid = (const char *)c->ids.p + pr->uid_off;
		struct pack_job *j;

		if (pr->parent != i)
			continue;                      /* superseded by a newer row of the same user */
		keyed = state != NULL && pr->uid_len > 0;
		known = 0;
		if (keyed && (r = pack_remembered(c, state, pr, p->all, prev, &nprev, &prev_bits, &prev_at, &known,
		    err)) != 0)
			goto out;
		if (!(pr->consent_bits & p->match_bit)) {
			stats->no_match++;
			/*
			 * A user without match consent is never tokenized unless it may
			 * be at the gateway: with a state file, only a user id sent
			 * before (whose tokens it remembers; not for a row older than
			 * what it sent); without one the agent cannot know, so every
			 * such user with identifiers gets a withdrawal (README:
			 * "Withdrawal").  A user withdrawn before is withdrawn again
			 * while the partner's file lists it so: the state is written
			 * at pack time, and a batch packed but never pushed must not
			 * lose the withdrawal (the gateway takes it twice harmlessly).
			 */
			if (keyed && (!known || pr->consent_at < prev_at))
				continue;
			j = pack_job_next(sw, p, (uint32_t)i);
			if (known) {                   /* else the workers tokenize the row */
				memcpy(j->toks, prev, sizeof(prev));
				j->nt = (uint8_t)nprev;
				j->have_toks = 1;
			}
			/*
			 * The gateway erases the user: it learns only that, not what
			 * the user still allows the partner (consent 0, and every
			 * purpose it held is withdrawn).
			 */
			lost = known && (prev_bits & p->match_bit) ? prev_bits : p->all;
			if ((r = pack_receipt(c, p->rb, pr, lost, j->leaf, &leafp, err)) != 0)
				goto out;
			j->has_leaf = leafp != NULL;
			j->withdrawal = 1;
			j->bits = 0;
			j->withdrawn = lost;
			if (known && (prev_bits != pr->consent_bits || prev_at != pr->consent_at) &&
			    (r = agent_state_consent_put(state, c->pp->id, uid, pr->uid_len, pr->consent_bits,
			    pr->consent_at, err)) != 0)
				goto out;
			stats->withdrawn++;
			continue;
		}
		j = pack_job_next(sw, p, (uint32_t)i);
		j->bits = pr->consent_bits;
		/* The state remembers the tokens: only then are they computed here. */
		need = keyed && (!known || pr->consent_at >= prev_at);
		if (need) {
			if ((r = pack_tokens(c, p->h, pr, toks, &nt, err)) != 0)
				goto out;
			memcpy(j->toks, toks, sizeof(toks));
			j->nt = (uint8_t)nt;
			j->have_toks = 1;
		}
		p->packed++;
		/* A user sent before who lost a purpose: the older, wider records go (a narrowing withdrawal). */
		if (known && (prev_bits & p->match_bit) && (prev_bits & ~pr->consent_bits & p->all) != 0 &&
		    pr->consent_at > prev_at) {
			lost = prev_bits & ~pr->consent_bits;
			j = pack_job_next(sw, p, (uint32_t)i);
			if ((r = pack_receipt(c, p->rb, pr, lost, j->leaf, &leafp, err)) != 0)
				goto out;
			j->has_leaf = leafp != NULL;
			memcpy(j->toks, prev, sizeof(prev));
			j->nt = (uint8_t)nprev;
			j->have_toks = 1;
			j->withdrawal = 1;
			j->bits = pr->consent_bits;
			j->withdrawn = lost;
			stats->narrowed++;
		}
		/* Remember what changed (a pack of the same file again writes nothing). */
		if (need &&
		    ((!pack_same_tokens(toks, nt, prev, nprev) &&
		    (r = agent_state_put(state, c->pp->id, uid, pr->uid_len, toks, nt, err)) != 0) ||
		    ((!known || prev_bits != pr->consent_bits || prev_at != pr->consent_at) &&
		    (r = agent_state_consent_put(state, c->pp->id, uid, pr->uid_len, pr->consent_bits, pr->consent_at,
		    err)) != 0)))
			goto out;
	}
	r = 0;
out:
	sodium_memzero(toks, sizeof(toks));
	sodium_memzero(prev, sizeof(prev));
	return r;
}

static int
pack_write(struct pack_ctx *c, struct workers *pool, struct pack_stats *stats, struct cg_err *err)
{
	const struct pack_opts *o = c->o;
	const struct policy *pol = o->pol;
	struct sealer sl = { 0 };
	struct token_ctx *tctx = NULL;
	struct token_hasher **hashers = NULL;
	struct pack_seal_window sw[2], *pending = NULL, *s;
	struct pack_plan p;
	unsigned nthreads = workers_count(pool), t;
	int r, cur = 0;

	memset(sw, 0, sizeof(sw));
	memset(&p, 0, sizeof(p));
	p.c = c;
	p.stats = stats;
	p.match_bit = 1u << policy_purpose_bit(pol, "match");
	p.all = pol->npurposes >= 32 ? UINT32_MAX : (1u << pol->npurposes) - 1;
	if ((r = sealer_open(&sl, o->output, pol, c->pp, o->sign, o->gateway, BATCH_KIND_DATA, (int64_t)time(NULL),
	    err)) != 0 || (r = token_ctx_new(o->match->key, o->match->key_len, &tctx, err)) != 0)
		goto out;
	/* hashers[nthreads] is the main thread's, for the tokens the state needs. */
	if ((hashers = calloc(nthreads + 1, sizeof(*hashers))) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (t = 0; t <= nthreads; t++)
		if ((r = token_hasher_new(tctx, &hashers[t], err)) != 0)
			goto out;
	p.h = hashers[nthreads];
	for (t = 0; t < 2; t++) {
		sw[t].c = c;
		sw[t].sl = &sl;
		sw[t].hashers = hashers;
		if ((sw[t].jobs = calloc((size_t)c->task_rows * PACK_WINDOW_TASKS, sizeof(*sw[t].jobs))) == NULL) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	/* the pack looks up every user of the file: the state is read once, in order (state.h) */
	if (o->state != NULL && ((r = agent_state_open(o->state, &p.state, err)) != 0 ||
	    (r = agent_state_begin(p.state, err)) != 0 || (r = agent_state_cache(p.state, c->pp->id, err)) != 0))
		goto out;
	if (o->receipts != NULL && (r = receipt_batch_new(o->receipts, pol, c->pp->id, BATCH_KIND_DATA, &p.rb, err)) != 0)
		goto out;
	/* Plan a window while the workers seal the previous one, then write that one. */
	do {
		s = &sw[cur];
		s->njobs = 0;
		if ((r = pack_plan(&p, s, err)) != 0)
			goto out;
		if (pending != NULL && (r = pack_seal_wait(pool, pending, err)) != 0)
			goto out;
		if (s->njobs > 0)
			workers_start(pool, pack_seal_tasks(s), pack_seal_task, s);
		if (pending != NULL && (r = pack_seal_write(pending, &sl, err)) != 0)
			goto out;
		pending = s->njobs > 0 ? s : NULL;
		cur ^= 1;
	} while (p.next < c->nrows);
	if (pending != NULL && ((r = pack_seal_wait(pool, pending, err)) != 0 ||
	    (r = pack_seal_write(pending, &sl, err)) != 0))
		goto out;
	pending = NULL;
	/* The state commits first: a batch on disk is never missing from the agent's memory. */
	if (p.state != NULL && (r = agent_state_commit(p.state, err)) != 0)
		goto out;
	if ((r = batch_writer_finish(sl.w, stats->digest, err)) != 0)
		goto out;
	memcpy(stats->batch_id, sl.batch_id, sizeof(stats->batch_id));
	stats->packed = p.packed;
	/* Receipts last: their tree paths need every leaf of the batch. */
	if (p.rb != NULL) {
		if ((r = receipt_batch_write(p.rb, sl.batch_id, err)) != 0) {
			cg_err_prefix(err, "the batch %s is written but its receipts are not: pack again", o->output);
			goto out;
		}
		stats->receipts = receipt_batch_count(p.rb);
	}
	r = 0;
out:
	/* A job still running reads the windows and the hashers: it ends before they go. */
	if (workers_wait(pool) != 0 && r == 0)
		r = cg_err_set(err, CG_ERR_INTERNAL, "a worker failed");
	for (t = 0; t < 2; t++) {
		if (sw[t].jobs != NULL)
			sodium_memzero(sw[t].jobs, (size_t)c->task_rows * PACK_WINDOW_TASKS * sizeof(*sw[t].jobs));
		free(sw[t].jobs);
		for (size_t k = 0; k < PACK_WINDOW_TASKS; k++)
			free(sw[t].out[k].buf);
	}
	if (hashers != NULL)
		for (t = 0; t <= nthreads; t++)
			token_hasher_free(hashers[t]);
	free(hashers);
	receipt_batch_free(p.rb);
	sealer_close(&sl);
	agent_state_close(p.state);   /* an uncommitted transaction is rolled back */
	token_ctx_free(tctx);
	return r;
}

static void
pack_progress(const struct csvfile *f, uint64_t rows, int done)
{
	uint64_t size = csvfile_size(f), off = csvfile_offset(f);

	if (size > 0)
		fprintf(stderr, "\rpacking: %3d%% (%llu rows)%s", (int)(off * 100 / size), (unsigned long long)rows,
		    done ? "\n" : "");
	else
		fprintf(stderr, "\rpacking: %llu rows%s", (unsigned long long)rows, done ? "\n" : "");
}

int
pack_csv(const struct pack_opts *o, struct pack_stats *stats, struct cg_err *err)
{
	struct pack_ctx c;
	struct pack_window win[2], *pending = NULL, *w;
	struct workers *pool = NULL;
	struct csvfile *f = NULL;
	struct csvfile_row *row;
	struct cg_err rowerr, readerr;
	int r, progress, cur = 0, read_r = 0;

	memset(stats, 0, sizeof(*stats));
	memset(&c, 0, sizeof(c));
	c.o = o;
	c.ids.secret = 1;
	c.task_rows = o->task_rows ? o->task_rows : PACK_TASK_ROWS;
	pack_window_init(&win[0], &c);
	pack_window_init(&win[1], &c);
	randombytes_buf(c.dkey_key, sizeof(c.dkey_key));
	if ((c.pp = policy_partner_find(o->pol, o->partner_id)) == NULL) {
		r = cg_err_set(err, CG_ERR_POLICY, "partner '%s' is not in the policy", o->partner_id);
		goto out;
	}
	if ((r = sealer_check_keys(c.pp, o->match, o->sign, o->gateway, "packing", err)) != 0)
		goto out;
	if ((r = workers_new(o->threads ? o->threads : workers_cpus(), &pool, err)) != 0)
		goto out;
	if ((r = csvfile_open(o->input, &f, err)) != 0)
		goto out;
	progress = o->progress && isatty(STDERR_FILENO);
	r = csvfile_next(f, &row, err);
	if (r == 0)
		r = cg_err_set(err, CG_ERR_FORMAT, "%s: empty file (no header row)", o->input);
	if (r < 0)
		goto out;
	if ((r = pack_header(&c, o->input, row, err)) != 0)
		goto out;
	/*
	 * Read a window while the workers check the previous one, then merge
	 * that one in order.  A fatal read error is reported after the rows
	 * before it are merged, as the sequential reader would have met a
	 * --strict failure among them first.
	 */
	for (;;) {
		w = &win[cur];
		pack_window_reset(w);
		w->rows_before = stats->rows;
		while (w->nrows < (size_t)c.task_rows * PACK_WINDOW_TASKS) {
			cg_err_clear(&rowerr);
			r = csvfile_next(f, &row, &rowerr);
			if (r == 0)
				break;
			if (r == CG_ERR_IO || r == CG_ERR_NOMEM) {
				read_r = r;
				readerr = rowerr;
				break;
			}
			stats->rows++;
			/* r < 0 here is a CSV syntax error confined to this row. */
			if (pack_window_add(w, r > 0 ? row : NULL, r > 0 ? row->line : 0, &rowerr) != 0) {
				read_r = CG_ERR_NOMEM;
				cg_err_set(&readerr, CG_ERR_NOMEM, "out of memory");
				break;
			}
			if (progress && (stats->rows & 0xffff) == 0)
				pack_progress(f, stats->rows, 0);
		}
		/* The file's size over the first window's bytes: how many rows to make room for. */
		if (stats->rows == w->nrows && csvfile_size(f) > 0 && csvfile_offset(f) > 0)
			c.rows_hint = (size_t)((double)w->nrows * (double)csvfile_size(f) / (double)csvfile_offset(f));
		if (pending != NULL && (r = workers_wait(pool)) != 0) {
			r = cg_err_set(err, r, "out of memory");
			goto out;
		}
		if (w->nrows > 0)
			workers_start(pool, pack_window_tasks(w), pack_parse_task, w);
		if (pending != NULL && (r = pack_merge(&c, pending, stats, err)) != 0)
			goto out;
		pending = w->nrows > 0 ? w : NULL;
		cur ^= 1;
		if (w->nrows < (size_t)c.task_rows * PACK_WINDOW_TASKS)
			break;                     /* end of input, or a fatal read error */
	}
	if (pending != NULL) {
		if ((r = workers_wait(pool)) != 0) {
			r = cg_err_set(err, r, "out of memory");
			goto out;
		}
		if ((r = pack_merge(&c, pending, stats, err)) != 0)
			goto out;
	}
	if (read_r != 0) {
		*err = readerr;
		r = read_r;
		goto out;
	}
	if (progress)
		pack_progress(f, stats->rows, 1);
	if ((r = pack_dedupe(&c, &stats->duplicates, err)) != 0)
		goto out;
	r = pack_write(&c, pool, stats, err);
out:
	workers_free(pool);             /* waits for a job still running on the windows */
	pack_window_free(&win[0]);
	pack_window_free(&win[1]);
	csvfile_free(f);
	free(c.col_of_field);
	free(c.rows);
	pack_arena_free(&c.ids);
	pack_arena_free(&c.payloads);
	sodium_memzero(c.dkey_key, sizeof(c.dkey_key));
	return r;
}
