/* pack.c - see pack.h */
#include "agent/pack.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#include "base/csvfile.h"
#include "agent/sealer.h"
#include "agent/receipt.h"
#include "agent/state.h"
#include "base/normalize.h"
#include "crypto/merkle.h"
#include "crypto/seal.h"
#include "crypto/token.h"
#include "proto/batch.h"

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
};

static int
pack_arena_add(struct pack_arena *a, const void *data, size_t len, size_t *off)
{
	if (a->cap - a->len < len) {
		size_t ncap = a->cap ? a->cap : 65536;
		unsigned char *np;
		while (ncap - a->len < len)
			ncap *= 2;
		if (!a->secret) {
			/* realloc can move large blocks without copying them */
			if ((np = realloc(a->p, ncap)) == NULL)
				return CG_ERR_NOMEM;
		} else {
			/* a secret arena is copied by hand so that the old copy is wiped */
			if ((np = malloc(ncap)) == NULL)
				return CG_ERR_NOMEM;
			if (a->len)
				memcpy(np, a->p, a->len);
			if (a->p != NULL)
				sodium_memzero(a->p, a->cap);
			free(a->p);
		}
		a->p = np;
		a->cap = ncap;
	}
	memcpy(a->p + a->len, data, len);
	*off = a->len;
	a->len += len;
	return 0;
}

static void
pack_arena_free(struct pack_arena *a)
{
	if (a->p != NULL && a->secret)
		sodium_memzero(a->p, a->cap);
	free(a->p);
	memset(a, 0, sizeof(*a));
}

/* Map the header row onto the schema: every schema column exactly once, nothing else. */
static int
pack_header(struct pack_ctx *c, const char *input, const struct csvfile_row *row, struct cg_err *err)
{
	const struct policy_partner *pp = c->pp;
	unsigned char seen[POLICY_COLUMNS_MAX];
	size_t i, j;

	memset(seen, 0, sizeof(seen));
	if (pp->ncolumns > sizeof(seen))
		return cg_err_set(err, CG_ERR_LIMIT, "partner '%s' has too many columns", pp->id);
	if ((c->col_of_field = calloc(row->nfields, sizeof(int))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	c->nheader = row->nfields;
	for (i = 0; i < row->nfields; i++) {
		const char *name = row->fields[i];
		/* A BOM is stripped by the reader; tolerate stray spaces around header names. */
		while (*name == ' ')
			name++;
		for (j = 0; j < pp->ncolumns; j++) {
			size_t n = strlen(pp->columns[j].name);
			if (strncmp(pp->columns[j].name, name, n) == 0 &&
			    strspn(name + n, " ") == strlen(name + n))
				break;
		}
		if (j == pp->ncolumns)
			return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu:%zu: column '%.64s' is not in partner '%s''s "
			    "schema in the policy", input, (unsigned long long)row->line, i + 1, name, pp->id);
		if (seen[j])
			return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu:%zu: column '%s' appears twice", input,
			    (unsigned long long)row->line, i + 1, pp->columns[j].name);
		seen[j] = 1;
		c->col_of_field[i] = (int)j;
	}
	for (j = 0; j < pp->ncolumns; j++)
		if (!seen[j])
			return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: missing column '%s' that the policy's "
			    "schema for partner '%s' declares", input, (unsigned long long)row->line,
			    pp->columns[j].name, pp->id);
	return 0;
}

/* Check and keep one data row. CG_ERR_FORMAT/POLICY: the row is bad (message says where and why). */
static int
pack_row_add(struct pack_ctx *c, const char *input, const struct csvfile_row *row, struct cg_err *err)
{
	const struct policy *pol = c->o->pol;
	const struct policy_partner *pp = c->pp;
	Crossgate__Field fields[POLICY_COLUMNS_MAX], *fp[POLICY_COLUMNS_MAX];
	Crossgate__RecordPayload payload = CROSSGATE__RECORD_PAYLOAD__INIT;
	char norm[2][NORMALIZE_EMAIL_MAX + 1];
	unsigned char pbuf[8192];
	struct pack_row pr;
	struct cg_err sub;
	size_t i, nf = 0, plen, uid = SIZE_MAX;
	int r, kind, have_consent = 0, have_time = 0;

	memset(&pr, 0, sizeof(pr));
	pr.line = row->line;
	if (row->nfields != c->nheader)
		return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: row has %zu fields, the header has %zu", input,
		    (unsigned long long)row->line, row->nfields, c->nheader);
	for (i = 0; i < row->nfields; i++) {
		const struct policy_column *col = &pp->columns[c->col_of_field[i]];
		struct policy_value v;

		cg_err_clear(&sub);
		if (col->role == POLICY_ROLE_LOCAL_ID) {
			uid = i;
			continue;
		}
		if (col->role == POLICY_ROLE_IDENTIFIER) {
			kind = col->id_kind == TOKEN_KIND_EMAIL ? 0 : 1;
			if (row->lens[i] == 0 || strspn(row->fields[i], " \t") == row->lens[i])
				continue;
			if (pr.has_id[kind]) {
				r = cg_err_set(&sub, CG_ERR_FORMAT, "a second identifier of the same kind");
			} else if (kind == 0) {
				r = normalize_email(row->fields[i], row->lens[i], &pol->email, norm[0], sizeof(norm[0]),
				    &sub);
			} else {
				r = normalize_phone(row->fields[i], row->lens[i], pol->default_country, norm[1],
				    sizeof(norm[1]), &sub);
			}
			if (r != 0)
				goto bad_cell;
			pr.has_id[kind] = 1;
			continue;
		}
		if ((r = policy_value_parse(pol, col, row->fields[i], row->lens[i], &v, &sub)) != 0)
			goto bad_cell;
		switch (col->role) {
		case POLICY_ROLE_CONSENT:
			pr.consent_bits = v.bits;
			have_consent = 1;
			break;
		case POLICY_ROLE_CONSENT_TIME:
			if (v.is_null) {
				r = cg_err_set(&sub, CG_ERR_FORMAT, "required");
				goto bad_cell;
			}
			pr.consent_at = v.i;
			have_time = 1;
			break;
		default:
			/* Data minimization: a column shared for no purpose never leaves the partner. */
			if (v.is_null || !policy_column_shared(col, -1))
				break;
			crossgate__field__init(&fields[nf]);
			fields[nf].name = col->name;
			if (col->type == POLICY_TYPE_INT) {
				fields[nf].value_case = CROSSGATE__FIELD__VALUE_INT_VALUE;
				fields[nf].int_value = v.i;
			} else {
				/* The cell is NUL-terminated by the reader; v.s points into it. */
				fields[nf].value_case = CROSSGATE__FIELD__VALUE_STR_VALUE;
				fields[nf].str_value = row->fields[i];
			}
			fp[nf] = &fields[nf];
			nf++;
			break;
		}
		continue;
bad_cell:
		r = cg_err_set(err, r, "%s:%llu:%zu (%s): %s", input, (unsigned long long)row->line, i + 1,
		    col->name, sub.msg);
		goto out;
	}
	if (!pr.has_id[0] && !pr.has_id[1]) {
		r = cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: no identifier (email or phone)", input,
		    (unsigned long long)row->line);
		goto out;
	}
	if (!have_consent || !have_time) {
		r = cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: consent columns missing", input,
		    (unsigned long long)row->line);
		goto out;
	}
	payload.fields = fp;
	payload.n_fields = nf;
	plen = crossgate__record_payload__get_packed_size(&payload);
	if (plen > sizeof(pbuf)) {
		r = cg_err_set(err, CG_ERR_LIMIT, "%s:%llu: record too large", input, (unsigned long long)row->line);
		goto out;
	}
	crossgate__record_payload__pack(&payload, pbuf);
	if (pack_arena_add(&c->payloads, pbuf, plen, &pr.payload_off) != 0) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	pr.payload_len = (uint32_t)plen;
	for (kind = 0; kind < 2; kind++) {
		size_t n;
		if (!pr.has_id[kind])
			continue;
		n = strlen(norm[kind]);
		/*
		 * Duplicates are found on the normalized identifiers themselves (hashed
		 * with a key that dies with this run, compared exactly), so that users
		 * without match consent are never tokenized.
		 */
		crypto_shorthash((unsigned char *)&pr.dhash[kind], (const unsigned char *)norm[kind], n, c->dkey_key);
		if (pack_arena_add(&c->ids, norm[kind], n, &pr.id_off[kind]) != 0) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
		pr.id_len[kind] = (uint8_t)n;
	}
	if (uid != SIZE_MAX && row->lens[uid] > 0 && row->lens[uid] <= UINT16_MAX) {
		if (pack_arena_add(&c->ids, row->fields[uid], row->lens[uid], &pr.uid_off) != 0) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
		pr.uid_len = (uint16_t)row->lens[uid];
	}
	if (c->nrows == c->caprows) {
		size_t ncap = c->caprows ? c->caprows * 2 : 4096;
		struct pack_row *nr = realloc(c->rows, ncap * sizeof(*nr));
		if (nr == NULL) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
		c->rows = nr;
		c->caprows = ncap;
	}
	pr.parent = (uint32_t)c->nrows;
	c->rows[c->nrows++] = pr;
	r = 0;
out:
	sodium_memzero(norm, sizeof(norm));
	return r;
}

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
pack_tokens(struct pack_ctx *c, struct token_ctx *tctx, const struct pack_row *pr, struct token toks[2], size_t *nt,
    struct cg_err *err)
{
	*nt = 0;
	for (int k = 0; k < 2; k++) {
		if (!pr->has_id[k])
			continue;
		toks[*nt].kind = k == 0 ? TOKEN_KIND_EMAIL : TOKEN_KIND_PHONE;
		if (token_compute(tctx, toks[*nt].kind, (const char *)c->ids.p + pr->id_off[k], pr->id_len[k],
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

/*
 * Seal pt (plen bytes; ct holds plen + SEAL_TAG_LEN) as record `index` of
 * the row's user with consent `bits`, the row's consent time and these
 * tokens, and add it.
 */
static int
pack_record_add(struct pack_ctx *c, struct sealer *sl, uint64_t index, const struct pack_row *pr, uint32_t bits,
    const struct token *toks, size_t nt, const unsigned char *pt, size_t plen, unsigned char *ct, int withdrawal,
    struct cg_err *err)
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
	return batch_writer_add(sl->w, &rec, err);
}

/*
 * A withdrawal record (proto/crossgate.proto SealedRecord.withdrawal): the
 * consent bits left at the gateway (0 when the user lost match) and the
 * row's time, the tokens the gateway holds for the user, and the sealed
 * Withdrawal (what was withdrawn, the receipt leaf if any).
 */
static int
pack_withdrawal(struct pack_ctx *c, struct sealer *sl, uint64_t index, const struct pack_row *pr, uint32_t bits,
    const struct token *toks, size_t nt, uint32_t withdrawn, const unsigned char *leaf, struct cg_err *err)
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
	return pack_record_add(c, sl, index, pr, bits, toks, nt, pt, plen, ct, 1, err);
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

static int
pack_write(struct pack_ctx *c, struct pack_stats *stats, struct cg_err *err)
{
	const struct pack_opts *o = c->o;
	const struct policy *pol = o->pol;
	struct token toks[2], prev[2];
	struct sealer sl = { 0 };
	struct token_ctx *tctx = NULL;
	struct agent_state *state = NULL;
	struct receipt_batch *rb = NULL;
	const unsigned char *leafp;
	unsigned char ct[8192 + SEAL_TAG_LEN], leaf[RECEIPT_LEAF_LEN];
	uint32_t match_bit = 1u << policy_purpose_bit(pol, "match");
	uint32_t all = pol->npurposes >= 32 ? UINT32_MAX : (1u << pol->npurposes) - 1;
	uint32_t prev_bits, lost;
	int64_t prev_at;
	uint64_t index = 0, packed = 0;
	size_t i, nt, nprev;
	int r, known, keyed;

	if ((r = sealer_open(&sl, o->output, pol, c->pp, o->sign, o->gateway, BATCH_KIND_DATA, (int64_t)time(NULL),
	    err)) != 0 || (r = token_ctx_new(o->match->key, o->match->key_len, &tctx, err)) != 0)
		goto out;
	if (o->state != NULL && ((r = agent_state_open(o->state, &state, err)) != 0 ||
	    (r = agent_state_begin(state, err)) != 0))
		goto out;
	if (o->receipts != NULL && (r = receipt_batch_new(o->receipts, pol, c->pp->id, BATCH_KIND_DATA, &rb, err)) != 0)
		goto out;
	for (i = 0; i < c->nrows; i++) {
		struct pack_row *pr = &c->rows[i];
		const char *uid = (const char *)c->ids.p + pr->uid_off;

		if (pr->parent != i)
			continue;                      /* superseded by a newer row of the same user */
		keyed = state != NULL && pr->uid_len > 0;
		known = 0;
		if (keyed && (r = pack_remembered(c, state, pr, all, prev, &nprev, &prev_bits, &prev_at, &known,
		    err)) != 0)
			goto out;
		if (!(pr->consent_bits & match_bit)) {
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
			if (!known && (r = pack_tokens(c, tctx, pr, prev, &nprev, err)) != 0)
				goto out;
			/*
			 * The gateway erases the user: it learns only that, not what
			 * the user still allows the partner (consent 0, and every
			 * purpose it held is withdrawn).
			 */
			lost = known && (prev_bits & match_bit) ? prev_bits : all;
			if ((r = pack_receipt(c, rb, pr, lost, leaf, &leafp, err)) != 0 ||
			    (r = pack_withdrawal(c, &sl, index, pr, 0, prev, nprev, lost, leafp, err)) != 0)
				goto out;
			if (known && (prev_bits != pr->consent_bits || prev_at != pr->consent_at) &&
			    (r = agent_state_consent_put(state, c->pp->id, uid, pr->uid_len, pr->consent_bits,
			    pr->consent_at, err)) != 0)
				goto out;
			stats->withdrawn++;
			index++;
			continue;
		}
		if ((r = pack_tokens(c, tctx, pr, toks, &nt, err)) != 0 ||
		    (r = pack_record_add(c, &sl, index, pr, pr->consent_bits, toks, nt, c->payloads.p + pr->payload_off,
		    pr->payload_len, ct, 0, err)) != 0)
			goto out;
		index++;
		packed++;
		/* A user sent before who lost a purpose: the older, wider records go (a narrowing withdrawal). */
		if (known && (prev_bits & match_bit) && (prev_bits & ~pr->consent_bits & all) != 0 &&
		    pr->consent_at > prev_at) {
			lost = prev_bits & ~pr->consent_bits;
			if ((r = pack_receipt(c, rb, pr, lost, leaf, &leafp, err)) != 0 ||
			    (r = pack_withdrawal(c, &sl, index, pr, pr->consent_bits, prev, nprev, lost, leafp, err)) != 0)
				goto out;
			stats->narrowed++;
			index++;
		}
		/* Remember what changed (a pack of the same file again writes nothing). */
		if (keyed && (!known || pr->consent_at >= prev_at) &&
		    ((!pack_same_tokens(toks, nt, prev, nprev) &&
		    (r = agent_state_put(state, c->pp->id, uid, pr->uid_len, toks, nt, err)) != 0) ||
		    ((!known || prev_bits != pr->consent_bits || prev_at != pr->consent_at) &&
		    (r = agent_state_consent_put(state, c->pp->id, uid, pr->uid_len, pr->consent_bits, pr->consent_at,
		    err)) != 0)))
			goto out;
	}
	/* The state commits first: a batch on disk is never missing from the agent's memory. */
	if (state != NULL && (r = agent_state_commit(state, err)) != 0)
		goto out;
	if ((r = batch_writer_finish(sl.w, stats->digest, err)) != 0)
		goto out;
	memcpy(stats->batch_id, sl.batch_id, sizeof(stats->batch_id));
	stats->packed = packed;
	/* Receipts last: their tree paths need every leaf of the batch. */
	if (rb != NULL) {
		if ((r = receipt_batch_write(rb, sl.batch_id, err)) != 0) {
			cg_err_prefix(err, "the batch %s is written but its receipts are not: pack again", o->output);
			goto out;
		}
		stats->receipts = receipt_batch_count(rb);
	}
	r = 0;
out:
	sodium_memzero(toks, sizeof(toks));
	sodium_memzero(prev, sizeof(prev));
	receipt_batch_free(rb);
	sealer_close(&sl);
	agent_state_close(state);   /* an uncommitted transaction is rolled back */
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
	struct csvfile *f = NULL;
	struct csvfile_row *row;
	struct cg_err rowerr;
	int r, progress;

	memset(stats, 0, sizeof(*stats));
	memset(&c, 0, sizeof(c));
	c.o = o;
	c.ids.secret = 1;
	randombytes_buf(c.dkey_key, sizeof(c.dkey_key));
	if ((c.pp = policy_partner_find(o->pol, o->partner_id)) == NULL) {
		r = cg_err_set(err, CG_ERR_POLICY, "partner '%s' is not in the policy", o->partner_id);
		goto out;
	}
	if ((r = sealer_check_keys(c.pp, o->match, o->sign, o->gateway, "packing", err)) != 0)
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
	for (;;) {
		cg_err_clear(&rowerr);
		r = csvfile_next(f, &row, &rowerr);
		if (r == 0)
			break;
		if (r == CG_ERR_IO || r == CG_ERR_NOMEM) {
			*err = rowerr;
			goto out;
		}
		stats->rows++;
		/* r < 0 here is a CSV syntax error confined to this row. */
		if (r > 0)
			r = pack_row_add(&c, o->input, row, &rowerr);
		if (r == CG_ERR_NOMEM) {
			*err = rowerr;
			goto out;
		}
		if (r != 0) {
			stats->bad_rows++;
			if (o->strict) {
				r = cg_err_set(err, CG_ERR_FORMAT, "%s (--strict: nothing written)", rowerr.msg);
				goto out;
			}
			if (o->report != NULL && (o->report_max == 0 || stats->bad_rows <= o->report_max))
				fprintf(o->report, "%s\n", rowerr.msg);
		}
		if (progress && (stats->rows & 0xffff) == 0)
			pack_progress(f, stats->rows, 0);
	}
	if (progress)
		pack_progress(f, stats->rows, 1);
	if ((r = pack_dedupe(&c, &stats->duplicates, err)) != 0)
		goto out;
	r = pack_write(&c, stats, err);
out:
	csvfile_free(f);
	free(c.col_of_field);
	free(c.rows);
	pack_arena_free(&c.ids);
	pack_arena_free(&c.payloads);
	sodium_memzero(c.dkey_key, sizeof(c.dkey_key));
	return r;
}
