/* revoke.c - see revoke.h */
#include "agent/revoke.h"

#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "base/csvfile.h"
#include "agent/sealer.h"
#include "agent/state.h"
#include "base/normalize.h"
#include "crypto/seal.h"
#include "crypto/token.h"
#include "proto/batch.h"

/* Tokens of one CSV row; 0 with *n set, or a row error (FORMAT/NOTFOUND) in err. */
static int
revoke_row(const struct revoke_opts *o, const struct policy_partner *pp, const int *col, const struct csvfile_row *row,
    size_t nheader, struct token_ctx *tctx, struct agent_state *state, struct token out[2], size_t *n,
    struct cg_err *err)
{
	char norm[NORMALIZE_EMAIL_MAX + 1];
	struct cg_err sub;
	size_t i, k;
	int r = 0;

	*n = 0;
	if (row->nfields != nheader)
		return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: row has %zu fields, the header has %zu", o->input,
		    (unsigned long long)row->line, row->nfields, nheader);
	for (i = 0; i < row->nfields && r == 0; i++) {
		const struct policy_column *c = &pp->columns[col[i]];
		struct token t[2];
		size_t nt = 0;

		if (row->lens[i] == 0)
			continue;
		cg_err_clear(&sub);
		if (c->role == POLICY_ROLE_LOCAL_ID) {
			if (state == NULL)
				return cg_err_set(err, CG_ERR_ARG, "%s:%llu:%zu (%s): a user id needs the agent's state "
				    "file (--state)", o->input, (unsigned long long)row->line, i + 1, c->name);
			if ((r = agent_state_get(state, pp->id, row->fields[i], row->lens[i], t, &nt, err)) != 0)
				return r;
			if (nt == 0)
				return cg_err_set(err, CG_ERR_NOTFOUND, "%s:%llu:%zu (%s): this user id was never packed "
				    "with this state file", o->input, (unsigned long long)row->line, i + 1, c->name);
		} else {
			t[0].kind = c->id_kind;
			r = c->id_kind == TOKEN_KIND_EMAIL
			    ? normalize_email(row->fields[i], row->lens[i], &o->pol->email, norm, sizeof(norm), &sub)
			    : normalize_phone(row->fields[i], row->lens[i], o->pol->default_country, norm, sizeof(norm),
			    &sub);
			if (r == 0)
				r = token_compute(tctx, t[0].kind, norm, strlen(norm), t[0].value);
			sodium_memzero(norm, sizeof(norm));
			if (r != 0)
				return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu:%zu (%s): %s", o->input,
				    (unsigned long long)row->line, i + 1, c->name, sub.msg[0] ? sub.msg : "bad value");
			nt = 1;
		}
		/* One token per kind: merge what the columns and the state say. */
		for (k = 0; k < nt; k++) {
			size_t j;
			for (j = 0; j < *n && out[j].kind != t[k].kind; j++)
				;
			if (j == *n && *n < 2)
				out[(*n)++] = t[k];
		}
	}
	if (*n == 0)
		return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: no identifier or user id", o->input,
		    (unsigned long long)row->line);
	if (*n == 2 && out[0].kind > out[1].kind) {
		struct token tmp = out[0];
		out[0] = out[1];
		out[1] = tmp;
	}
	return 0;
}

int
revoke_pack(const struct revoke_opts *o, struct revoke_stats *stats, struct cg_err *err)
{
	const struct policy_partner *pp;
	Crossgate__SealedRecord rec = CROSSGATE__SEALED_RECORD__INIT;
	Crossgate__Token tok[2], *tokp[2];
	struct csvfile *f = NULL;
	struct csvfile_row *row;
	struct sealer sl = { 0 };
	struct token_ctx *tctx = NULL;
	struct agent_state *state = NULL;
	struct token toks[2];
	struct cg_err rowerr;
	unsigned char ad[SEAL_AD_MAX], ct[SEAL_TAG_LEN];
	int col[POLICY_COLUMNS_MAX];
	size_t nheader = 0, nt, i, j, ad_len;
	int r;

	memset(stats, 0, sizeof(*stats));
	if ((pp = policy_partner_find(o->pol, o->partner_id)) == NULL)
		return cg_err_set(err, CG_ERR_POLICY, "partner '%s' is not in the policy", o->partner_id);
	if ((r = sealer_check_keys(pp, o->match, o->sign, o->gateway, "a revocation", err)) != 0)
		return r;
	if ((r = token_ctx_new(o->match->key, o->match->key_len, &tctx, err)) != 0 ||
	    (o->state != NULL && (r = agent_state_open(o->state, &state, err)) != 0) ||
	    (r = csvfile_open(o->input, &f, err)) != 0)
		goto out;
	r = csvfile_next(f, &row, err);
	if (r == 0)
		r = cg_err_set(err, CG_ERR_FORMAT, "%s: empty file (no header row)", o->input);
	if (r < 0)
		goto out;
	/* Header: identifier columns and the local id column of the partner's schema only. */
	nheader = row->nfields;
	for (i = 0; i < row->nfields; i++) {
		const struct policy_column *c = policy_column_find(pp, row->fields[i]);
		if (c == NULL || (c->role != POLICY_ROLE_IDENTIFIER && c->role != POLICY_ROLE_LOCAL_ID)) {
			r = cg_err_set(err, CG_ERR_FORMAT, "%s:%llu:%zu: column '%.64s' is not an identifier or the "
			    "user id column of partner '%s'", o->input, (unsigned long long)row->line, i + 1,
			    row->fields[i], pp->id);
			goto out;
		}
		col[i] = (int)(c - pp->columns);
		for (j = 0; j < i; j++)
			if (col[j] == col[i]) {
				r = cg_err_set(err, CG_ERR_FORMAT, "%s:%llu:%zu: column '%s' appears twice", o->input,
				    (unsigned long long)row->line, i + 1, c->name);
				goto out;
			}
	}

	if ((r = sealer_open(&sl, o->output, o->pol, pp, o->sign, o->gateway, BATCH_KIND_REVOCATION, o->now, err)) != 0)
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
		if (r > 0)
			r = revoke_row(o, pp, col, row, nheader, tctx, state, toks, &nt, &rowerr);
		if (r == CG_ERR_ARG || r == CG_ERR_DB || r == CG_ERR_NOMEM) {
			*err = rowerr;
			goto out;
		}
		if (r != 0) {
			/* A user that cannot be named must not be silently kept: the whole file fails. */
			r = cg_err_set(err, r == CG_ERR_NOTFOUND ? CG_ERR_NOTFOUND : CG_ERR_FORMAT, "%s (nothing "
			    "written: fix the row and run again)", rowerr.msg);
			stats->bad_rows++;
			goto out;
		}
		for (i = 0; i < nt; i++) {
			crossgate__token__init(&tok[i]);
			tok[i].kind = (Crossgate__IdKind)toks[i].kind;
			tok[i].value.data = toks[i].value;
			tok[i].value.len = TOKEN_LEN;
			tokp[i] = &tok[i];
		}
		if ((r = seal_ad_build(ad, &ad_len, sl.batch_id, pp->id, stats->users, 0, o->now, toks, nt)) != 0 ||
		    (r = seal_record(sl.key, stats->users, ad, ad_len, NULL, 0, ct)) != 0) {
			r = cg_err_set(err, r, "cannot seal a revocation record");
			goto out;
		}
		rec.index = stats->users;
		rec.tokens = tokp;
		rec.n_tokens = nt;
		rec.consent_bits = 0;
		rec.consent_at = o->now;
		rec.ciphertext.data = ct;
		rec.ciphertext.len = sizeof(ct);
		if ((r = batch_writer_add(sl.w, &rec, err)) != 0)
			goto out;
		stats->users++;
	}
	if ((r = batch_writer_finish(sl.w, stats->digest, err)) == 0)
		memcpy(stats->batch_id, sl.batch_id, sizeof(stats->batch_id));
out:
	sodium_memzero(toks, sizeof(toks));
	sealer_close(&sl);
	csvfile_free(f);
	agent_state_close(state);
	token_ctx_free(tctx);
	return r;
}
