/* explift.c - see explift.h */
#include "gateway/explift.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "crypto/token.h"
#include "gateway/audience.h"
#include "gateway/budget.h"
#include "gateway/experiment.h"
#include "gateway/join.h"
#include "gateway/outcome.h"

/* One subject at the campaign partner: its token there, arm, and its outcomes in the window. */
struct explift_subject {
	unsigned char token[TOKEN_LEN];
	unsigned char arm, converted;
	int64_t value;
};

struct explift_walk {
	struct explift_subject *s;
	size_t n;
	const char *partner;
	int64_t from, to;
};

static int
explift_dberr(struct store *st, const char *what, struct cg_err *err)
{
	return cg_err_set(err, CG_ERR_DB, "%s: experiment lift: %s: %s", store_path(st), what,
	    sqlite3_errmsg(store_db(st)));
}

static int
explift_cmp(const void *x, const void *y)
{
	return memcmp(((const struct explift_subject *)x)->token, ((const struct explift_subject *)y)->token, TOKEN_LEN);
}

/* The "experiment-lift" audit event; rho_nano 0 and id NULL when refused before the experiment is known. */
static int
explift_log(struct audit *a, const struct explift_spec *sp, const char *outcome, const char *partner,
    const unsigned char *id, int64_t rho_nano, const char *reason, uint64_t *index, struct cg_err *err)
{
	Crossgate__AuditEvent ev;
	Crossgate__AuditEvent__CountsEntry ce, *cep = &ce;
	int r;

	crossgate__audit_event__init(&ev);
	crossgate__audit_event__counts_entry__init(&ce);
	ev.actor = (char *)(sp->analyst != NULL ? sp->analyst->name : "analyst");
	ev.action = (char *)"experiment-lift";
	ev.outcome = (char *)outcome;
	ev.reason = (char *)reason;
	ev.purpose = (char *)AUDIENCE_PURPOSE;
	ev.partner_id = (char *)partner;
	ev.policy_hash.data = (uint8_t *)sp->pol->hash;
	ev.policy_hash.len = sizeof(sp->pol->hash);
	if (id != NULL) {
		ev.batch_id.data = (uint8_t *)id;
		ev.batch_id.len = 16;
	}
	ce.key = (char *)"rho_nano";
	ce.value = (uint64_t)rho_nano;
	ev.counts = &cep;
	ev.n_counts = 1;
	if ((r = audit_log(a, &ev, err)) == 0 && index != NULL)
		*index = ev.seq;
	return r;
}

/* Refuse: an audit event, then the caller's message and code. */
static int
explift_refuse(struct audit *a, const struct explift_spec *sp, const char *partner, const unsigned char *id,
    const char *reason, int code, struct cg_err *err)
{
	struct cg_err why = *err;
	int r;

	if ((r = explift_log(a, sp, "refused", partner, id, 0, reason, NULL, err)) != 0)
		return r;
	*err = why;
	return code;
}

/* The experiment's row and its audience's partners. */
static int
explift_load(struct store *st, const char *name, struct explift_result *out, char owner[65], int64_t *created,
    char side[2][65], struct cg_err *err)
{
	sqlite3_stmt *q = NULL;
	int r;

	if (sqlite3_prepare_v2(store_db(st), "SELECT e.id, e.audience, e.partner, e.analyst, e.created, "
	    "a.left_partner, a.right_partner FROM experiments e JOIN audiences a ON a.name = e.audience "
	    "WHERE e.name = ?1", -1, &q, NULL) != SQLITE_OK)
		return explift_dberr(st, "prepare", err);
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	if ((r = sqlite3_step(q)) == SQLITE_ROW) {
		snprintf(out->experiment_id, sizeof(out->experiment_id), "%s", (const char *)sqlite3_column_text(q, 0));
		snprintf(out->audience, sizeof(out->audience), "%s", (const char *)sqlite3_column_text(q, 1));
		snprintf(out->partner, sizeof(out->partner), "%s", (const char *)sqlite3_column_text(q, 2));
		snprintf(owner, 65, "%s", (const char *)sqlite3_column_text(q, 3));
		*created = sqlite3_column_int64(q, 4);
		snprintf(side[0], 65, "%s", (const char *)sqlite3_column_text(q, 5));
		snprintf(side[1], 65, "%s", (const char *)sqlite3_column_text(q, 6));
		r = 0;
	} else if (r == SQLITE_DONE)
		r = cg_err_set(err, CG_ERR_NOTFOUND, "no experiment named '%s' (crossgate experiment create)", name);
	else
		r = explift_dberr(st, "read the experiment", err);
	sqlite3_finalize(q);
	return r;
}

/* The experiment's subjects at the campaign partner, sorted by token. */
static int
explift_subjects(struct store *st, const char *name, const char *partner, struct explift_walk *w,
    struct cg_err *err)
{
	sqlite3_stmt *q = NULL;
	size_t cap = 0;
	int r = 0, rc;

	if (sqlite3_prepare_v2(store_db(st), "SELECT token, arm FROM experiment_subjects WHERE experiment = ?1 AND "
	    "partner = ?2", -1, &q, NULL) != SQLITE_OK)
		return explift_dberr(st, "prepare", err);
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, partner, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(q, 0) != TOKEN_LEN) {
			r = cg_err_set(err, CG_ERR_DB, "experiment '%s': a malformed subject", name);
			goto out;
		}
		if (w->n == cap) {
			size_t ncap = cap ? 2 * cap : 4096;
			struct explift_subject *ns = malloc(ncap * sizeof(*ns));

			if (ns == NULL) {
				r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
				goto out;
			}
			if (w->n > 0)
				memcpy(ns, w->s, w->n * sizeof(*ns));
			if (w->s != NULL)
				sodium_memzero(w->s, cap * sizeof(*w->s));
			free(w->s);
			w->s = ns;
			cap = ncap;
		}
		memcpy(w->s[w->n].token, sqlite3_column_blob(q, 0), TOKEN_LEN);
		w->s[w->n].arm = sqlite3_column_int(q, 1) != 0;
		w->s[w->n].converted = 0;
		w->s[w->n].value = 0;
		w->n++;
	}
	if (rc != SQLITE_DONE)
		r = explift_dberr(st, "read the subjects", err);
	else if (w->n > 0)
		qsort(w->s, w->n, sizeof(*w->s), explift_cmp);
out:
	sqlite3_finalize(q);
	return r;
}

/* One stored outcome: counted for its subject when from the campaign partner and in the window. */
static int
explift_outcome(void *ctx, const struct outcome_seen *o, struct cg_err *err)
{
	struct explift_walk *w = ctx;
	struct explift_subject key, *s = NULL;
	size_t i;

	(void)err;
	if (strcmp(o->partner, w->partner) != 0 || o->at < w->from || o->at > w->to || !o->converted)
		return 0;
	for (i = 0; i < o->ntokens && s == NULL; i++) {
		memcpy(key.token, o->tokens[i].value, TOKEN_LEN);
		s = bsearch(&key, w->s, w->n, sizeof(*w->s), explift_cmp);
	}
	sodium_memzero(key.token, sizeof(key.token));
	if (s == NULL)
		return 0;
	s->converted = 1;
	if (o->value_cents > 0 && __builtin_add_overflow(s->value, o->value_cents, &s->value))
		s->value = INT64_MAX;
	return 0;
}

int
explift_run(struct store *st, struct audit *a, const struct explift_spec *sp, struct explift_result *out,
    struct cg_err *err)
{
	const struct policy *pol = sp->pol;
	struct explift_walk w;
	struct lift_arm arm[2];
	struct join pre;
	unsigned char id[16];
	char owner[65], side[2][65], reason[1024];
	int64_t created = 0, rho_nano;
	double confidence = sp->confidence > 0 ? sp->confidence : EXPLIFT_CONFIDENCE_DEFAULT;
	size_t i;
	int r;

	memset(out, 0, sizeof(*out));
	memset(&w, 0, sizeof(w));
	memset(arm, 0, sizeof(arm));
	memset(&pre, 0, sizeof(pre));
	memset(id, 0, sizeof(id));
	if ((r = audience_schema(st, err)) != 0 || (r = experiment_schema(st, err)) != 0 ||
	    (r = budget_schema(st, err)) != 0)
		return r;
	rho_nano = sp->rho_nano > 0 ? sp->rho_nano : pol->marketing.lift_rho_nano > 0 ? pol->marketing.lift_rho_nano :
	    pol->privacy.query_rho_nano;
	if (confidence >= 1.0)
		return cg_err_set(err, CG_ERR_ARG, "the confidence level must be above 0 and below 1");
	if ((r = lift_release_cost((double)rho_nano / BUDGET_NANO, &rho_nano, err)) != 0)
		return r;

	/* 1. The policy and the experiment's owner decide these: nothing about the data. */
	if (sp->analyst == NULL || !policy_principal_may_export(pol, sp->analyst, AUDIENCE_PURPOSE)) {
		cg_err_set(err, CG_ERR_POLICY, "analyst '%s' is not granted the purpose '%s': no experiment lift",
		    sp->analyst != NULL ? sp->analyst->name : "?", AUDIENCE_PURPOSE);
		return explift_refuse(a, sp, NULL, NULL, "analyst not granted marketing", CG_ERR_POLICY, err);
	}
	if ((r = explift_load(st, sp->name, out, owner, &created, side, err)) != 0)
		return r;
	if (sodium_hex2bin(id, sizeof(id), out->experiment_id, strlen(out->experiment_id), NULL, NULL, NULL) != 0)
		return cg_err_set(err, CG_ERR_DB, "experiment '%s': a malformed id", sp->name);
	if (strcmp(owner, sp->analyst->name) != 0) {
		cg_err_set(err, CG_ERR_POLICY, "experiment '%s' is another analyst's", sp->name);
		return explift_refuse(a, sp, out->partner, id, "the experiment is another analyst's", CG_ERR_POLICY, err);
	}
	pre.side[0] = policy_partner_find(pol, side[0]);
	pre.side[1] = policy_partner_find(pol, side[1]);
	if (pre.side[0] == NULL || pre.side[1] == NULL)
		return cg_err_set(err, CG_ERR_POLICY, "experiment '%s': its audience's partners are not in the policy",
		    sp->name);
	join_dataset(&pre, out->dataset, sizeof(out->dataset));
	out->window_from = created;
	out->window_to = sp->now > 0 ? sp->now : (int64_t)time(NULL);

	/* 2. The subjects and their outcomes in the window: one value per subject, clamped. */
	w.partner = out->partner;
	w.from = out->window_from;
	w.to = out->window_to;
	if ((r = explift_subjects(st, sp->name, out->partner, &w, err)) != 0 ||
	    (r = outcome_each(st, sp->storage, sp->name, explift_outcome, &w, err)) != 0)
		goto out;
	for (i = 0; i < w.n; i++)
		lift_arm_add(&arm[w.s[i].arm], w.s[i].converted, w.s[i].value, pol->marketing.value_cap);
	/*
	 * An arm erasure emptied is not refused here: a refusal before the charge
	 * would say for free that an arm holds no one.  It is released like any
	 * other, and its noisy size refuses it after the charge.
	 */

	/* 3. The charge, before any noise is drawn; no refunds. */
	if ((r = budget_charge(st, a, sp->analyst->name, out->dataset, rho_nano, policy_principal_budget(pol, sp->analyst),
	    AUDIENCE_PURPOSE, &out->remaining_nano, err)) != 0)
		goto out;
	out->charged_nano = rho_nano;

	/* 4. The release; an arm too small once noised is refused, the charge stands. */
	if ((r = lift_release_make(&arm[0], &arm[1], pol->marketing.value_cap, (double)rho_nano / BUDGET_NANO,
	    confidence, &out->rl, err)) != 0) {
		struct cg_err why = *err;

		snprintf(reason, sizeof(reason), "experiment %s: the release failed after the charge (%s)", sp->name,
		    r == CG_ERR_LIMIT ? "a noisy arm below the minimum" : "an error");
		if (explift_log(a, sp, "refused", out->partner, id, rho_nano, reason, NULL, err) == 0)
			*err = why;
		goto out;
	}
	if (out->rl.rho_nano != rho_nano) {
		r = cg_err_set(err, CG_ERR_INTERNAL, "the release's rho differs from the charge");
		goto out;
	}

	/* 5. The audit event: noisy figures and what follows from them, only. */
	{
		const struct lift_release *rl = &out->rl;

		snprintf(reason, sizeof(reason), "experiment %s; rho %.9g; confidence %.9g; value_cap %lld; "
		    "noisy control n %.0f conversions %.0f value_sum %.0f; noisy treatment n %.0f conversions %.0f "
		    "value_sum %.0f; rate lift %.6f [%.6f, %.6f]; value lift %.4f [%.4f, %.4f]", sp->name, rl->rho,
		    rl->confidence, (long long)rl->value_cap, rl->control.n, rl->control.conversions,
		    rl->control.value_sum, rl->treatment.n, rl->treatment.conversions, rl->treatment.value_sum,
		    rl->est.rate_diff.est, rl->est.rate_diff.lo, rl->est.rate_diff.hi, rl->est.value_diff.est,
		    rl->est.value_diff.lo, rl->est.value_diff.hi);
		r = explift_log(a, sp, "ok", out->partner, id, rho_nano, reason, &out->audit_index, err);
	}
out:
	if (w.s != NULL)
		sodium_memzero(w.s, w.n * sizeof(*w.s));
	free(w.s);
	sodium_memzero(arm, sizeof(arm));
	return r;
}
