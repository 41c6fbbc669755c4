/* outcomes.c - see outcomes.h */
#include "agent/outcomes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "agent/sealer.h"
#include "agent/state.h"
#include "crypto/seal.h"
#include "crypto/token.h"
#include "proto/batch.h"

static const char *const outcomes_col_name[OUTCOMES_NCOLS] = { NULL, "converted", "value_cents", "at" };

int
outcomes_header_parse(const struct csvfile_row *row, const char *user_col, const char *input,
    struct outcomes_header *h, struct cg_err *err)
{
	int seen[OUTCOMES_NCOLS] = { 0 };
	size_t i, k;

	memset(h, 0, sizeof(*h));
	h->nfields = row->nfields;
	for (i = 0; i < row->nfields; i++) {
		for (k = 0; k < OUTCOMES_NCOLS; k++)
			if (strcmp(row->fields[i], k == OUTCOMES_COL_USER ? user_col : outcomes_col_name[k]) == 0)
				break;
		if (k == OUTCOMES_NCOLS)
			return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu:%zu: column '%.64s' is not one of %s, converted, "
			    "value_cents, at", input, (unsigned long long)row->line, i + 1, row->fields[i], user_col);
		if (seen[k])
			return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu:%zu: column '%s' appears twice", input,
			    (unsigned long long)row->line, i + 1, row->fields[i]);
		seen[k] = 1;
		h->pos[k] = i;
	}
	for (k = 0; k < OUTCOMES_NCOLS; k++)
		if (!seen[k])
			return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: missing column '%s'", input,
			    (unsigned long long)row->line, k == OUTCOMES_COL_USER ? user_col : outcomes_col_name[k]);
	return 0;
}

/* A whole number in [0, max], digits only. */
static int
outcomes_uint(const char *s, size_t len, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (len == 0 || strspn(s, "0123456789") != len)
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

int
outcomes_row_parse(const struct outcomes_header *h, const struct csvfile_row *row, const char *input,
    struct outcome_row *out, struct cg_err *err)
{
	const char *why = NULL;
	struct cg_err sub;
	size_t k = 0, i;
	int64_t v;

	memset(out, 0, sizeof(*out));
	if (row->nfields != h->nfields)
		return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu: row has %zu fields, the header has %zu", input,
		    (unsigned long long)row->line, row->nfields, h->nfields);
	i = h->pos[OUTCOMES_COL_USER];
	out->user_id = row->fields[i];
	out->user_id_len = row->lens[i];
	if (out->user_id_len == 0) {
		k = OUTCOMES_COL_USER;
		why = "required";
		goto bad;
	}
	i = h->pos[k = OUTCOMES_COL_CONVERTED];
	if (row->lens[i] != 1 || (row->fields[i][0] != '0' && row->fields[i][0] != '1')) {
		why = "must be 0 or 1";
		goto bad;
	}
	out->converted = row->fields[i][0] == '1';
	i = h->pos[k = OUTCOMES_COL_VALUE];
	if (outcomes_uint(row->fields[i], row->lens[i], BATCH_OUTCOME_VALUE_MAX, &v) != 0) {
		why = "must be a whole number of cents, 0 to 10^12";
		goto bad;
	}
	out->value_cents = v;
	if (!out->converted && v != 0) {
		why = "must be 0 when converted is 0";
		goto bad;
	}
	i = h->pos[k = OUTCOMES_COL_AT];
	if (policy_parse_time(row->fields[i], row->lens[i], &out->at, &sub) != 0) {
		why = "not a time (ISO 8601)";
		goto bad;
	}
	return 0;
bad:
	memset(out, 0, sizeof(*out));
	return cg_err_set(err, CG_ERR_FORMAT, "%s:%llu:%zu (%s): %s", input, (unsigned long long)row->line,
	    h->pos[k] + 1, k == OUTCOMES_COL_USER ? "user id" : outcomes_col_name[k], why);
}

/* Seal and add one record: the user's tokens, the consent last sent, AEAD(Outcome). */
static int
outcomes_record_add(const struct outcomes_opts *o, const struct policy_partner *pp, struct sealer *sl,
    uint64_t index, const struct token *toks, size_t nt, uint32_t bits, int64_t consent_at,
    const struct outcome_row *orow, struct cg_err *err)
{
	Crossgate__SealedRecord rec = CROSSGATE__SEALED_RECORD__INIT;
	Crossgate__Outcome oc = CROSSGATE__OUTCOME__INIT;
	Crossgate__Token tok[2], *tokp[2];
	unsigned char ad[SEAL_AD_MAX], pt[128], ct[128 + SEAL_TAG_LEN];
	size_t ad_len, plen, i;
	int r;

	oc.experiment = (char *)o->experiment;
	oc.converted = orow->converted;
	oc.value_cents = orow->value_cents;
	oc.at = orow->at;
	/* experiment <= 64 bytes and three varints: well within pt */
	plen = crossgate__outcome__pack(&oc, pt);
	for (i = 0; i < nt; i++) {
		crossgate__token__init(&tok[i]);
		tok[i].kind = (Crossgate__IdKind)toks[i].kind;
		tok[i].value.data = (uint8_t *)toks[i].value;
		tok[i].value.len = TOKEN_LEN;
		tokp[i] = &tok[i];
	}
	if ((r = seal_ad_build(ad, &ad_len, sl->batch_id, pp->id, index, bits, consent_at, toks, nt)) != 0 ||
	    (r = seal_record(sl->key, index, ad, ad_len, pt, plen, ct)) != 0) {
		r = cg_err_set(err, r, "cannot seal an outcome record");
		goto out;
	}
	rec.index = index;
	rec.tokens = tokp;
	rec.n_tokens = nt;
	rec.consent_bits = bits;
	rec.consent_at = consent_at;
	rec.ciphertext.data = ct;
	rec.ciphertext.len = plen + SEAL_TAG_LEN;
	r = batch_writer_add(sl->w, &rec, err);
out:
	sodium_memzero(pt, sizeof(pt));
	return r;
}

int
outcomes_pack(const struct outcomes_opts *o, struct outcomes_stats *stats, struct cg_err *err)
{
	const struct policy_partner *pp;
	const struct policy_column *uidc = NULL;
	struct csvfile *f = NULL;
	struct csvfile_row *row;
	struct sealer sl = { 0 };
	struct agent_state *state = NULL;
	struct outcomes_header h;
	struct outcome_row orow;
	struct token toks[2];
	uint32_t match_bit, bits;
	int64_t consent_at;
	size_t nt, i;
	int r, found;

	memset(stats, 0, sizeof(*stats));
	if ((pp = policy_partner_find(o->pol, o->partner_id)) == NULL)
		return cg_err_set(err, CG_ERR_POLICY, "partner '%s' is not in the policy", o->partner_id);
	if (batch_experiment_check(o->experiment, err) != 0)
		return cg_err_prefix(err, "--experiment");
	if (o->state == NULL)
		return cg_err_set(err, CG_ERR_ARG, "outcomes name users by the user ids packed before: the agent's "
		    "state file (--state) is needed");
	for (i = 0; i < pp->ncolumns && uidc == NULL; i++)
		if (pp->columns[i].role == POLICY_ROLE_LOCAL_ID)
			uidc = &pp->columns[i];
	if (uidc == NULL)
		return cg_err_set(err, CG_ERR_POLICY, "partner '%s' has no user id column in the policy", pp->id);
	if ((r = sealer_check_keys(pp, o->match, o->sign, o->gateway, "outcomes", err)) != 0)
		return r;
	match_bit = 1u << policy_purpose_bit(o->pol, "match");
	if ((r = agent_state_open(o->state, &state, err)) != 0 || (r = csvfile_open(o->input, &f, err)) != 0)
		goto out;
	r = csvfile_next(f, &row, err);
	if (r == 0)
		r = cg_err_set(err, CG_ERR_FORMAT, "%s: empty file (no header row)", o->input);
	if (r < 0 || (r = outcomes_header_parse(row, uidc->name, o->input, &h, err)) != 0)
		goto out;
	if ((r = sealer_open(&sl, o->output, o->pol, pp, o->sign, o->gateway, BATCH_KIND_OUTCOMES, o->now, err)) != 0)
		goto out;
	for (;;) {
		if ((r = csvfile_next(f, &row, err)) == 0)
			break;
		if (r < 0) {
			/* A row the CSV reader refused (a stray quote...) fails the file too. */
			if (r == CG_ERR_FORMAT || r == CG_ERR_LIMIT)
				cg_err_prefix(err, "nothing written");
			goto out;
		}
		stats->rows++;
		if ((r = outcomes_row_parse(&h, row, o->input, &orow, err)) != 0) {
			cg_err_prefix(err, "nothing written");
			goto out;
		}
		if ((r = agent_state_lookup(state, pp->id, orow.user_id, orow.user_id_len, toks, &nt, &bits, &consent_at,
		    &found, err)) != 0)
			goto out;
		if (nt == 0 || (found && !(bits & match_bit))) {
			stats->unknown++;
			continue;
		}
		if (!found) {
			/* a state from before consents were remembered: its tokens were sent with match */
			bits = match_bit;
			consent_at = orow.at;
		}
		if ((r = outcomes_record_add(o, pp, &sl, stats->packed, toks, nt, bits, consent_at, &orow, err)) != 0)
			goto out;
		stats->packed++;
		stats->converted += (uint64_t)orow.converted;
	}
	if ((r = batch_writer_finish(sl.w, stats->digest, err)) != 0)
		goto out;
	memcpy(stats->batch_id, sl.batch_id, sizeof(stats->batch_id));
out:
	sodium_memzero(toks, sizeof(toks));
	sealer_close(&sl);
	csvfile_free(f);
	agent_state_close(state);
	return r;
}
