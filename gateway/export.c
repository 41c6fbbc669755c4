/* export.c - see export.h */
#include "gateway/export.h"

#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>
#include <time.h>

#include "crypto/seal.h"
#include "crypto/token.h"
#include "gateway/ingest.h"

#define EXPORT_NONE UINT32_MAX

static double
export_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Open-addressing map from a 32-byte token to a record index. */
struct export_map {
	uint32_t *slot;
	size_t mask;
};

static int
export_map_init(struct export_map *m, size_t n)
{
	size_t cap = 16;

	while (cap < n * 2 + 16)
		cap *= 2;
	if ((m->slot = malloc(cap * sizeof(*m->slot))) == NULL)
		return CG_ERR_NOMEM;
	memset(m->slot, 0xff, cap * sizeof(*m->slot));
	m->mask = cap - 1;
	return 0;
}

/* Find the token; if absent and `insert` != EXPORT_NONE, insert it. Returns the index found or EXPORT_NONE. */
static uint32_t
export_map_get(struct export_map *m, const struct store_ref *refs, int phone, const unsigned char *tok,
    uint32_t insert)
{
	uint64_t h;
	size_t s;

	memcpy(&h, tok, sizeof(h));
	for (s = h & m->mask;; s = (s + 1) & m->mask) {
		uint32_t o = m->slot[s];
		if (o == EXPORT_NONE) {
			if (insert != EXPORT_NONE)
				m->slot[s] = insert;
			return EXPORT_NONE;
		}
		if (memcmp(phone ? refs[o].phone : refs[o].email, tok, TOKEN_LEN) == 0)
			return o;
	}
}

static uint32_t
export_find(uint32_t *parent, uint32_t i)
{
	while (parent[i] != i) {
		parent[i] = parent[parent[i]];
		i = parent[i];
	}
	return i;
}

static int
export_newer(const struct store_ref *a, const struct store_ref *b)
{
	if (a->consent_at != b->consent_at)
		return a->consent_at > b->consent_at;
	return a->id > b->id;
}

/*
 * One side: group records sharing a token, keep the newest of each group.
 * winner[i] is the index of i's group winner.  The maps end up holding, per
 * token, some record of its group: callers resolve through winner[].
 */
static int
export_side(const struct store_ref *refs, size_t n, uint32_t **winner_out, struct export_map *emap,
    struct export_map *pmap, uint64_t *superseded)
{
	uint32_t *parent = NULL, *winner = NULL;
	size_t i;
	int r = CG_ERR_NOMEM;

	*winner_out = NULL;
	if ((parent = malloc((n + 1) * sizeof(*parent))) == NULL ||
	    (winner = malloc((n + 1) * sizeof(*winner))) == NULL ||
	    export_map_init(emap, n) != 0 || export_map_init(pmap, n) != 0)
		goto out;
	for (i = 0; i < n; i++)
		parent[i] = (uint32_t)i;
	for (i = 0; i < n; i++) {
		uint32_t o;
		if (refs[i].has_email &&
		    (o = export_map_get(emap, refs, 0, refs[i].email, (uint32_t)i)) != EXPORT_NONE) {
			uint32_t a = export_find(parent, o), b = export_find(parent, (uint32_t)i);
			if (a != b)
				parent[a] = b;
		}
		if (refs[i].has_phone &&
		    (o = export_map_get(pmap, refs, 1, refs[i].phone, (uint32_t)i)) != EXPORT_NONE) {
			uint32_t a = export_find(parent, o), b = export_find(parent, (uint32_t)i);
			if (a != b)
				parent[a] = b;
		}
	}
	for (i = 0; i < n; i++)
		winner[i] = EXPORT_NONE;
	for (i = 0; i < n; i++) {
		uint32_t root = export_find(parent, (uint32_t)i);
		if (winner[root] == EXPORT_NONE || export_newer(&refs[i], &refs[winner[root]]))
			winner[root] = (uint32_t)i;
	}
	for (i = 0; i < n; i++) {
		uint32_t w = winner[export_find(parent, (uint32_t)i)];
		if (w != i)
			(*superseded)++;
		parent[i] = w;
	}
	*winner_out = parent;
	parent = NULL; /* transferred */
	r = 0;
out:
	free(parent);
	free(winner);
	return r;
}

/* Open one stored record's payload. Caller frees *out with crossgate__record_payload__free_unpacked. */
static int
export_open(struct store *st, const struct keyfile_key *storage, const struct store_ref *ref,
    Crossgate__RecordPayload **out, struct cg_err *err)
{
	struct store_sealed s;
	struct token toks[2];
	unsigned char ad[SEAL_AD_MAX], key[32], *pt = NULL;
	size_t ad_len, nt = 0, pt_len;
	int r;

	*out = NULL;
	if ((r = store_sealed_get(st, ref->id, &s, err)) != 0)
		return r;
	if (ref->has_email) {
		toks[nt].kind = TOKEN_KIND_EMAIL;
		memcpy(toks[nt++].value, ref->email, TOKEN_LEN);
	}
	if (ref->has_phone) {
		toks[nt].kind = TOKEN_KIND_PHONE;
		memcpy(toks[nt++].value, ref->phone, TOKEN_LEN);
	}
	if ((r = seal_ad_build(ad, &ad_len, s.batch_id, s.partner, s.idx, ref->consent_bits, ref->consent_at,
	    toks, nt)) != 0) {
		r = cg_err_set(err, r, "record %lld: cannot build associated data", (long long)ref->id);
		goto out;
	}
	if (s.payload_len < SEAL_TAG_LEN || (pt = malloc(s.payload_len)) == NULL) {
		r = cg_err_set(err, s.payload_len < SEAL_TAG_LEN ? CG_ERR_FORMAT : CG_ERR_NOMEM,
		    "record %lld: cannot read payload", (long long)ref->id);
		goto out;
	}
	if ((r = ingest_unwrap_batch_key(storage, s.batch_id, s.wrapped_key, s.wrapped_len, key, err)) != 0) {
		cg_err_prefix(err, "%s: record %lld", store_path(st), (long long)ref->id);
		goto out;
	}
	pt_len = s.payload_len - SEAL_TAG_LEN;
	r = seal_open_record(key, s.idx, ad, ad_len, s.payload, s.payload_len, pt, err);
	sodium_memzero(key, sizeof(key));
	if (r != 0) {
		/* Consent bits or tokens edited in the database fail here: they are bound to the payload. */
		cg_err_prefix(err, "%s: stored record %lld does not verify (database altered?)", store_path(st),
		    (long long)ref->id);
		goto out;
	}
	if ((*out = crossgate__record_payload__unpack(NULL, pt_len, pt)) == NULL)
		r = cg_err_set(err, CG_ERR_FORMAT, "stored record %lld: malformed payload", (long long)ref->id);
out:
	if (pt != NULL) {
		sodium_memzero(pt, s.payload_len);
		free(pt);
	}
	free(s.payload);
	return r;
}

/* One output column. */
struct export_col {
	const struct policy_column *col;
	int side;                     /* 0 left, 1 right */
	const struct policy_column *alt;  /* quasi-identifier of the same name on the right */
	char name[160];
};

struct export_buf {
	char *p;
	size_t len, cap;
};

static int
export_buf_add(struct export_buf *b, const char *s, size_t n)
{
	if (b->cap - b->len < n + 1) {
		size_t ncap = b->cap ? b->cap : 1 << 20;
		char *np;
		while (ncap - b->len < n + 1)
			ncap *= 2;
		if ((np = realloc(b->p, ncap)) == NULL)
			return CG_ERR_NOMEM;
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/* Append a CSV cell (a comma before all but a row's first); strings are quoted by libcsv. */
static int
export_cell(struct export_buf *b, const char *s, size_t n, int quote, int first)
{
	char tmp[2 * 1024 + 3];

	if (!first && export_buf_add(b, ",", 1) != 0)
		return CG_ERR_NOMEM;
	if (!quote)
		return export_buf_add(b, s, n);
	if (n > 1024)
		n = 1024;
	return export_buf_add(b, tmp, csv_write(tmp, sizeof(tmp), s, n));
}

static const Crossgate__Field *
export_field(const Crossgate__RecordPayload *p, const char *name)
{
	size_t i;

	for (i = 0; p != NULL && i < p->n_fields; i++)
		if (strcmp(p->fields[i]->name, name) == 0)
			return p->fields[i];
	return NULL;
}

/* Class table: generalized quasi-identifier tuples -> row count. */
struct export_class {
	uint64_t h;
	uint64_t count;
	char *key;
};

struct export_row {
	size_t off, len;              /* rendered cells (without pseudonym) in the row arena */
	uint32_t cls;
};

static int
export_write_file(const char *path, const char *header, const struct export_row *rows, size_t n,
    const struct export_buf *arena, const struct export_class *classes, uint32_t k, uint64_t *written,
    struct cg_err *err)
{
	char *tmp = NULL;
	FILE *f = NULL;
	int fd = -1, r;
	size_t i;
	unsigned char pn[16];
	char hex[33];

	*written = 0;
	if ((tmp = malloc(strlen(path) + 5)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	sprintf(tmp, "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0 || (f = fdopen(fd, "w")) == NULL) {
		r = cg_err_set(err, CG_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	fputs(header, f);
	for (i = 0; i < n; i++) {
		if (classes[rows[i].cls].count < k)
			continue;
		/* A fresh random pseudonym per row: nothing links rows across exports. */
		randombytes_buf(pn, sizeof(pn));
		sodium_bin2hex(hex, sizeof(hex), pn, sizeof(pn));
		fputs(hex, f);
		fputc(',', f);
		fwrite(arena->p + rows[i].off, 1, rows[i].len, f);
		fputc('\n', f);
		(*written)++;
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		r = cg_err_set(err, CG_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		r = cg_err_set(err, CG_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
		goto out;
	}
	f = NULL;
	if (rename(tmp, path) != 0) {
		r = cg_err_set(err, CG_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		goto out;
	}
	r = 0;
out:
	if (f != NULL) {
		fclose(f);
		unlink(tmp);
	}
	free(tmp);
	return r;
}

int
export_run(struct store *st, struct audit *a, const struct export_opts *o, struct export_stats *stats,
    struct cg_err *err)
{
	const struct policy *pol = o->pol;
	const struct policy_partner *side[2];
	struct store_ref *refs[2] = { NULL, NULL };
	size_t nref[2] = { 0, 0 };
	uint32_t *win[2] = { NULL, NULL }, *pair = NULL;
	struct export_map emap[2], pmap[2];
	struct export_col cols[512];
	struct export_buf arena = { 0 }, header = { 0 }, key = { 0 };
	struct export_row *rows = NULL;
	struct export_class *classes = NULL;
	uint32_t *ctab = NULL;
	size_t ncols = 0, nrows = 0, ncls = 0, ctab_mask = 0, i, j;
	uint32_t purpose_bit;
	double t0;
	int pbit, r, s;
	Crossgate__AuditEvent ev;
	Crossgate__AuditEvent__CountsEntry ce[6], *cep[6];

	memset(stats, 0, sizeof(*stats));
	memset(emap, 0, sizeof(emap));
	memset(pmap, 0, sizeof(pmap));
	stats->k = pol->k;
	if ((pbit = policy_purpose_bit(pol, o->purpose)) < 0) {
		r = cg_err_set(err, CG_ERR_POLICY, "purpose '%.64s' is not in the policy", o->purpose);
		goto out;
	}
	purpose_bit = 1u << pbit;
	if (pol->npartners < 2 && (o->left == NULL || o->right == NULL)) {
		r = cg_err_set(err, CG_ERR_POLICY, "the policy has fewer than two partners: nothing to join");
		goto out;
	}
	side[0] = policy_partner_find(pol, o->left ? o->left : pol->partners[0].id);
	side[1] = policy_partner_find(pol, o->right ? o->right : pol->partners[1].id);
	if (side[0] == NULL || side[1] == NULL || side[0] == side[1]) {
		r = cg_err_set(err, CG_ERR_ARG, "the join needs two different partners of the policy");
		goto out;
	}

	t0 = export_now();
	for (s = 0; s < 2; s++) {
		if ((r = store_refs_load(st, side[s]->id, &refs[s], &nref[s], err)) != 0)
			goto out;
		if (nref[s] >= EXPORT_NONE) {
			r = cg_err_set(err, CG_ERR_LIMIT, "too many records for one export");
			goto out;
		}
	}
	stats->load_seconds = export_now() - t0;
	t0 = export_now();
	for (s = 0; s < 2; s++) {
		if ((r = export_side(refs[s], nref[s], &win[s], &emap[s], &pmap[s], &stats->superseded)) != 0) {
			r = cg_err_set(err, r, "out of memory joining");
			goto out;
		}
	}
	stats->left_records = nref[0];
	stats->right_records = nref[1];

	/* pair[left winner] = right winner; right side marked by rpaired */
	if ((pair = malloc((nref[0] + nref[1] + 1) * sizeof(*pair))) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory joining");
		goto out;
	}
	for (i = 0; i < nref[0] + nref[1]; i++)
		pair[i] = EXPORT_NONE;
	for (int pass = 0; pass < 2; pass++) {
		for (i = 0; i < nref[0]; i++) {
			const struct store_ref *l = &refs[0][i];
			uint32_t rr;
			if (win[0][i] != i || pair[i] != EXPORT_NONE)
				continue;
			if (pass == 0 && !l->has_email)
				continue;
			if (pass == 1 && !l->has_phone)
				continue;
			rr = pass == 0 ? export_map_get(&emap[1], refs[1], 0, l->email, EXPORT_NONE)
				       : export_map_get(&pmap[1], refs[1], 1, l->phone, EXPORT_NONE);
			if (rr == EXPORT_NONE)
				continue;
			rr = win[1][rr];
			if (pair[nref[0] + rr] != EXPORT_NONE) {
				stats->ambiguous++;     /* that right user is already paired with another */
				continue;
			}
			pair[i] = rr;
			pair[nref[0] + rr] = (uint32_t)i;
			stats->matched++;
		}
	}
	/* Paired by email, but the phone points at a different right user: ambiguous, counted. */
	for (i = 0; i < nref[0]; i++) {
		uint32_t rr;
		if (pair[i] == EXPORT_NONE || !refs[0][i].has_phone)
			continue;
		rr = export_map_get(&pmap[1], refs[1], 1, refs[0][i].phone, EXPORT_NONE);
		if (rr != EXPORT_NONE && win[1][rr] != pair[i])
			stats->ambiguous++;
	}

	stats->join_seconds = export_now() - t0;

	/* Output columns: quasi-identifiers once, then each side's features. */
	for (s = 0; s < 2; s++) {
		for (j = 0; j < side[s]->ncolumns; j++) {
			const struct policy_column *c = &side[s]->columns[j];
			int dup = 0;
			/* A column may serve only the purposes the policy lists for it. */
			if (c->role != POLICY_ROLE_QUASI || !policy_column_shared(c, pbit))
				continue;
			for (i = 0; i < ncols; i++)
				if (strcmp(cols[i].col->name, c->name) == 0) {
					cols[i].alt = c;
					dup = 1;
				}
			if (dup || ncols == sizeof(cols) / sizeof(cols[0]))
				continue;
			cols[ncols].col = c;
			cols[ncols].side = s;
			cols[ncols].alt = NULL;
			snprintf(cols[ncols].name, sizeof(cols[ncols].name), "%s", c->name);
			ncols++;
		}
	}
	size_t nqi = ncols;
	for (s = 0; s < 2; s++) {
		for (j = 0; j < side[s]->ncolumns && ncols < sizeof(cols) / sizeof(cols[0]); j++) {
			const struct policy_column *c = &side[s]->columns[j];
			if (c->role != POLICY_ROLE_FEATURE || !policy_column_shared(c, pbit))
				continue;
			cols[ncols].col = c;
			cols[ncols].side = s;
			cols[ncols].alt = NULL;
			snprintf(cols[ncols].name, sizeof(cols[ncols].name), "%s_%s", side[s]->id, c->name);
			ncols++;
		}
	}
	if ((r = export_buf_add(&header, "pseudonym", 9)) != 0)
		goto nomem;
	for (i = 0; i < ncols; i++)
		if (export_buf_add(&header, ",", 1) != 0 ||
		    export_buf_add(&header, cols[i].name, strlen(cols[i].name)) != 0)
			goto nomem;
	if (export_buf_add(&header, "\n", 1) != 0)
		goto nomem;

	if ((rows = malloc((stats->matched + 1) * sizeof(*rows))) == NULL ||
	    (classes = malloc((stats->matched + 1) * sizeof(*classes))) == NULL)
		goto nomem;
	ctab_mask = 15;
	while (ctab_mask < stats->matched * 2 + 16)
		ctab_mask = ctab_mask * 2 + 1;
	if ((ctab = malloc((ctab_mask + 1) * sizeof(*ctab))) == NULL)
		goto nomem;
	memset(ctab, 0xff, (ctab_mask + 1) * sizeof(*ctab));

	for (i = 0; i < nref[0]; i++) {
		Crossgate__RecordPayload *pl[2] = { NULL, NULL };
		const struct store_ref *ref[2];
		size_t start = arena.len;
		uint64_t h;
		size_t slot;

		if (pair[i] == EXPORT_NONE)
			continue;
		ref[0] = &refs[0][i];
		ref[1] = &refs[1][pair[i]];
		if (!(ref[0]->consent_bits & purpose_bit) || !(ref[1]->consent_bits & purpose_bit)) {
			stats->no_consent++;
			continue;
		}
		for (s = 0; s < 2; s++) {
			if ((r = export_open(st, o->storage, ref[s], &pl[s], err)) != 0) {
				if (pl[0] != NULL)
					crossgate__record_payload__free_unpacked(pl[0], NULL);
				goto out;
			}
		}
		key.len = 0;
		r = 0;
		for (j = 0; j < ncols && r == 0; j++) {
			const struct export_col *ec = &cols[j];
			const struct policy_column *c = ec->col;
			const Crossgate__Field *f = export_field(pl[ec->side], c->name);
			char gen[256], num[32];

			if (j < nqi) {
				if (f == NULL && ec->alt != NULL) {
					f = export_field(pl[1 - ec->side], c->name);
					c = ec->alt;
				}
				if (f == NULL)
					snprintf(gen, sizeof(gen), "*");
				else if (f->value_case == CROSSGATE__FIELD__VALUE_INT_VALUE)
					r = policy_generalize_int(c, f->int_value, gen, sizeof(gen));
				else
					r = policy_generalize_str(c, f->str_value, strlen(f->str_value), gen, sizeof(gen));
				if (r != 0)
					break;
				r = export_cell(&arena, gen, strlen(gen), 1, j == 0);
				if (r == 0)
					r = export_buf_add(&key, gen, strlen(gen) + 1);   /* NUL separates QIs */
			} else if (f == NULL) {
				r = export_cell(&arena, "", 0, 0, j == 0);
			} else if (f->value_case == CROSSGATE__FIELD__VALUE_INT_VALUE) {
				int n = snprintf(num, sizeof(num), "%lld", (long long)f->int_value);
				r = export_cell(&arena, num, (size_t)n, 0, j == 0);
			} else {
				r = export_cell(&arena, f->str_value, strlen(f->str_value), 1, j == 0);
			}
		}
		crossgate__record_payload__free_unpacked(pl[0], NULL);
		crossgate__record_payload__free_unpacked(pl[1], NULL);
		if (r != 0) {
			r = cg_err_set(err, r == CG_ERR_NOMEM ? CG_ERR_NOMEM : CG_ERR_INTERNAL,
			    "cannot render an export row");
			goto out;
		}
		/* Find or add the row's equivalence class. */
		crypto_generichash((unsigned char *)&h, sizeof(h), (const unsigned char *)(key.p ? key.p : ""),
		    key.len, NULL, 0);
		for (slot = h & ctab_mask;; slot = (slot + 1) & ctab_mask) {
			uint32_t cidx = ctab[slot];
			if (cidx == EXPORT_NONE) {
				classes[ncls].h = h;
				classes[ncls].count = 0;
				if ((classes[ncls].key = malloc(key.len + 1)) == NULL)
					goto nomem;
				memcpy(classes[ncls].key, key.p ? key.p : "", key.len);
				ctab[slot] = (uint32_t)ncls++;
				cidx = ctab[slot];
			} else if (classes[cidx].h != h || memcmp(classes[cidx].key, key.p ? key.p : "", key.len) != 0) {
				continue;
			}
			classes[cidx].count++;
			rows[nrows].cls = cidx;
			break;
		}
		rows[nrows].off = start;
		rows[nrows].len = arena.len - start;
		nrows++;
	}
	/* Shuffle: the store's order must not leak into the export. */
	for (i = nrows; i > 1; i--) {
		size_t k2 = randombytes_uniform((uint32_t)i);
		struct export_row t = rows[i - 1];
		rows[i - 1] = rows[k2];
		rows[k2] = t;
	}
	for (i = 0; i < ncls; i++) {
		if (classes[i].count >= pol->k)
			stats->classes++;
		else
			stats->suppressed += classes[i].count;
	}
	if ((r = export_write_file(o->out_path, header.p, rows, nrows, &arena, classes, pol->k, &stats->exported,
	    err)) != 0)
		goto out;

	crossgate__audit_event__init(&ev);
	ev.actor = (char *)(o->actor ? o->actor : "analyst");
	ev.action = (char *)"export";
	ev.outcome = (char *)"ok";
	ev.purpose = (char *)o->purpose;
	ev.k = pol->k;
	ev.policy_hash.data = (uint8_t *)pol->hash;
	ev.policy_hash.len = sizeof(pol->hash);
	{
		const char *names[6] = { "matched", "no_consent", "exported", "suppressed", "ambiguous", "superseded" };
		uint64_t vals[6] = { stats->matched, stats->no_consent, stats->exported, stats->suppressed,
			stats->ambiguous, stats->superseded };
		for (i = 0; i < 6; i++) {
			crossgate__audit_event__counts_entry__init(&ce[i]);
			ce[i].key = (char *)names[i];
			ce[i].value = vals[i];
			cep[i] = &ce[i];
		}
	}
	ev.counts = cep;
	ev.n_counts = 6;
	r = audit_log(a, &ev, err);
	goto out;
nomem:
	r = cg_err_set(err, CG_ERR_NOMEM, "out of memory writing the export");
out:
	for (s = 0; s < 2; s++) {
		free(refs[s]);
		free(win[s]);
		free(emap[s].slot);
		free(pmap[s].slot);
	}
	for (i = 0; i < ncls; i++)
		free(classes[i].key);
	free(classes);
	free(ctab);
	free(rows);
	free(pair);
	free(arena.p);
	free(header.p);
	free(key.p);
	return r;
}
