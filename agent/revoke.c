/* revoke.c - see revoke.h */
#include "agent/revoke.h"

#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "base/csvfile.h"
#include "agent/receipt.h"
#include "agent/sealer.h"
#include "agent/state.h"
#include "base/normalize.h"
#include "crypto/seal.h"
#include "crypto/token.h"
#include "proto/batch.h"

/*
 * What a receipt needs of one row: the normalized identifier it binds (the
 * email if the row has one, else the phone; kind 0: none, the row named the
 * user by user id only) and the user id naming the file.
 */
struct revoke_who {
	uint32_t kind;
	char norm[NORMALIZE_EMAIL_MAX + 1];
	const char *uid;
	size_t uid_len;
};

/* Tokens of one CSV row; 0 with *n set, or a row error (FORMAT/NOTFOUND) in err. */
static int
revoke_row(const struct revoke_opts *o, const struct policy_partner *pp, const int *col, const struct csvfile_row *row,
    size_t nheader, struct token_ctx *tctx, struct agent_state *state, struct token out[2], size_t *n,
    struct revoke_who *who, struct cg_err *err)
{
	char norm[NORMALIZE_EMAIL_MAX + 1];
	struct cg_err sub;
	size_t i, k;
	int r = 0;

	*n = 0;
	memset(who, 0, sizeof(*who));
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
			who->uid = row->fields[i];
			who->uid_len = row->lens[i];
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
			if (r == 0 && (who->kind == 0 || c->id_kind == TOKEN_KIND_EMAIL)) {
				who->kind = c->id_kind;
				memcpy(who->norm, norm, sizeof(norm));
			}
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
	struct revoke_who who;
	struct receipt_batch *rb = NULL;
	Crossgate__Withdrawal wd;
	uint32_t all = o->pol->npurposes >= 32 ? UINT32_MAX : (1u << o->pol->npurposes) - 1;
	unsigned char ad[SEAL_AD_MAX], pt[64], ct[64 + SEAL_TAG_LEN], leaf[RECEIPT_LEAF_LEN];
	size_t plen;
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
	if (o->receipts != NULL &&
	    (r = receipt_batch_new(o->receipts, o->pol, pp->id, BATCH_KIND_REVOCATION, &rb, err)) != 0)
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
			r = revoke_row(o, pp, col, row, nheader, tctx, state, toks, &nt, &who, &rowerr);
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
		/* Empty, or with a receipt: the Withdrawal of every purpose, with the user's leaf. */
		plen = 0;
		if (rb != NULL && who.kind != 0) {
			crossgate__withdrawal__init(&wd);
			wd.withdrawn = all;
			if ((r = receipt_batch_add(rb, who.uid, who.uid_len, row->line, who.kind, who.norm, strlen(who.norm),
			    all, o->now, leaf, err)) != 0)
				goto out;
			wd.receipt_leaf.data = leaf;
			wd.receipt_leaf.len = sizeof(leaf);
			plen = crossgate__withdrawal__pack(&wd, pt);
		} else if (rb != NULL) {
			stats->no_receipt++;
		}
		sodium_memzero(who.norm, sizeof(who.norm));
		if ((r = seal_ad_build(ad, &ad_len, sl.batch_id, pp->id, stats->users, 0, o->now, toks, nt)) != 0 ||
		    (r = seal_record(sl.key, stats->users, ad, ad_len, pt, plen, ct)) != 0) {
			r = cg_err_set(err, r, "cannot seal a revocation record");
			goto out;
		}
		rec.index = stats->users;
		rec.tokens = tokp;
		rec.n_tokens = nt;
		rec.consent_bits = 0;
		rec.consent_at = o->now;
		rec.ciphertext.data = ct;
		rec.ciphertext.len = plen + SEAL_TAG_LEN;
		if ((r = batch_writer_add(sl.w, &rec, err)) != 0)
			goto out;
		stats->users++;
	}
	if ((r = batch_writer_finish(sl.w, stats->digest, err)) != 0)
		goto out;
	memcpy(stats->batch_id, sl.batch_id, sizeof(stats->batch_id));
	if (rb != NULL) {
		if ((r = receipt_batch_write(rb, sl.batch_id, err)) != 0) {
			cg_err_prefix(err, "the revocation batch %s is written but its receipts are not: run again",
			    o->output);
			goto out;
		}
		stats->receipts = receipt_batch_count(rb);
	}
out:
	sodium_memzero(&who, sizeof(who));
	receipt_batch_free(rb);
	sodium_memzero(toks, sizeof(toks));
	sealer_close(&sl);
	csvfile_free(f);
	agent_state_close(state);
	token_ctx_free(tctx);
	return r;
}
