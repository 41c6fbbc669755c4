/* diff.c - see diff.h */
#include "policy/diff.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "crypto/keyfile.h"

enum { D_WIDER, D_NARROWER, D_BREAKS, D_CHANGE };
static const char *const diff_tag[] = { "WIDER   ", "NARROWER", "BREAKS  ", "CHANGE  " };

static void diff_line(FILE *out, struct policy_diff_counts *c, int kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
diff_line(FILE *out, struct policy_diff_counts *c, int kind, const char *fmt, ...)
{
	va_list ap;

	c->total++;
	if (kind == D_WIDER)
		c->wider++;
	else if (kind == D_NARROWER)
		c->narrower++;
	else if (kind == D_BREAKS)
		c->breaks++;
	if (out == NULL)
		return;
	fprintf(out, "%s  ", diff_tag[kind]);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
}

static const char *
diff_role(enum policy_role r)
{
	switch (r) {
	case POLICY_ROLE_LOCAL_ID: return "local_id";
	case POLICY_ROLE_IDENTIFIER: return "identifier";
	case POLICY_ROLE_CONSENT: return "consent";
	case POLICY_ROLE_CONSENT_TIME: return "consent_time";
	case POLICY_ROLE_FEATURE: return "feature";
	case POLICY_ROLE_QUASI: return "quasi_identifier";
	}
	return "?";
}

/* Does the role send the column's values to the gateway? */
static int
diff_shared(enum policy_role r)
{
	return r == POLICY_ROLE_FEATURE || r == POLICY_ROLE_QUASI;
}

static int
diff_has_value(const struct policy_column *c, const char *v)
{
	size_t i;

	for (i = 0; i < c->nvalues; i++)
		if (strcmp(c->values[i], v) == 0)
			return 1;
	return 0;
}

static const char *
diff_map(const struct policy_column *c, const char *from)
{
	size_t i;

	for (i = 0; i < c->nmap; i++)
		if (strcmp(c->map[i].from, from) == 0)
			return c->map[i].to;
	return NULL;
}

static void
diff_column(const char *pid, const struct policy_column *a, const struct policy_column *b, FILE *out,
    struct policy_diff_counts *c)
{
	size_t i;

	if (a->role != b->role) {
		int kind = diff_shared(b->role) && !diff_shared(a->role) ? D_WIDER :
		    diff_shared(a->role) && !diff_shared(b->role) ? D_NARROWER :
		    a->role == POLICY_ROLE_QUASI && b->role == POLICY_ROLE_FEATURE ? D_WIDER : D_CHANGE;
		diff_line(out, c, kind, "partner %s: column %s: role %s -> %s%s", pid, a->name, diff_role(a->role),
		    diff_role(b->role), a->role == POLICY_ROLE_QUASI && b->role == POLICY_ROLE_FEATURE ?
		    " (exported without generalization)" : "");
	}
	if (a->type != b->type)
		diff_line(out, c, D_CHANGE, "partner %s: column %s: type changed", pid, a->name);
	if (a->role == POLICY_ROLE_IDENTIFIER && b->role == POLICY_ROLE_IDENTIFIER && a->id_kind != b->id_kind)
		diff_line(out, c, D_BREAKS, "partner %s: column %s: identifier kind changed: its tokens change",
		    pid, a->name);
	if ((a->has_min && (!b->has_min || b->min < a->min)) || (a->has_max && (!b->has_max || b->max > a->max)))
		diff_line(out, c, D_WIDER, "partner %s: column %s: range widened", pid, a->name);
	else if ((b->has_min && (!a->has_min || b->min > a->min)) || (b->has_max && (!a->has_max || b->max < a->max)))
		diff_line(out, c, D_NARROWER, "partner %s: column %s: range narrowed", pid, a->name);
	for (i = 0; i < b->nvalues; i++)
		if (!diff_has_value(a, b->values[i]))
			diff_line(out, c, D_WIDER, "partner %s: column %s: new category value '%s'", pid, a->name,
			    b->values[i]);
	for (i = 0; i < a->nvalues; i++)
		if (!diff_has_value(b, a->values[i]))
			diff_line(out, c, D_NARROWER, "partner %s: column %s: category value '%s' removed", pid,
			    a->name, a->values[i]);
	{
		/* Without `purposes:` a column serves every purpose. */
		uint32_t pa = a->has_purposes ? a->purposes : UINT32_MAX, pb = b->has_purposes ? b->purposes : UINT32_MAX;
		if (pb & ~pa)
			diff_line(out, c, D_WIDER, "partner %s: column %s: used for more purposes", pid, a->name);
		if (pa & ~pb)
			diff_line(out, c, D_NARROWER, "partner %s: column %s: used for fewer purposes", pid, a->name);
	}
	if (a->required != b->required)
		diff_line(out, c, D_CHANGE, "partner %s: column %s: now %s", pid, a->name,
		    b->required ? "required" : "optional");
	if (a->gen == POLICY_GEN_BAND && b->gen == POLICY_GEN_BAND && a->band != b->band)
		diff_line(out, c, b->band < a->band ? D_WIDER : D_NARROWER, "partner %s: column %s: bands of %" PRId64
		    " -> %" PRId64 "%s", pid, a->name, a->band, b->band, b->band < a->band ? " (finer)" : " (coarser)");
	else if (a->gen != b->gen && a->role == POLICY_ROLE_QUASI && b->role == POLICY_ROLE_QUASI)
		diff_line(out, c, D_CHANGE, "partner %s: column %s: generalization changed", pid, a->name);
	if (a->is_public != b->is_public && a->role == b->role)
		diff_line(out, c, b->is_public ? D_WIDER : D_NARROWER, "partner %s: column %s: %s", pid, a->name,
		    b->is_public ? "now public (its declared values may key query groups)" : "no longer public");
	if (a->sensitive != b->sensitive)
		diff_line(out, c, b->sensitive ? D_NARROWER : D_WIDER, "partner %s: column %s: %s", pid, a->name,
		    b->sensitive ? "now sensitive (row exports keep it l-diverse)" : "no longer sensitive");
	if (a->has_bounds != b->has_bounds)
		diff_line(out, c, b->has_bounds ? D_WIDER : D_NARROWER, "partner %s: column %s: %s", pid, a->name,
		    b->has_bounds ? "bounds added: it can be summed" : "bounds removed: it can no longer be summed");
	else if (a->has_bounds && (a->lo != b->lo || a->hi != b->hi))
		/* wider bounds clamp less but add more noise: neither simply wider nor narrower */
		diff_line(out, c, D_CHANGE, "partner %s: column %s: bounds [%" PRId64 ", %" PRId64 "] -> [%" PRId64 ", %"
		    PRId64 "]", pid, a->name, a->lo, a->hi, b->lo, b->hi);
	if (a->gen == POLICY_GEN_BAND && b->gen == POLICY_GEN_BAND && a->band == b->band &&
	    (a->nbands != b->nbands || memcmp(a->bands, b->bands, a->nbands * sizeof(a->bands[0])) != 0))
		diff_line(out, c, D_CHANGE, "partner %s: column %s: band hierarchy changed", pid, a->name);
	if (a->gen == POLICY_GEN_MAP && b->gen == POLICY_GEN_MAP) {
		for (i = 0; i < b->nmap; i++) {
			const char *was = diff_map(a, b->map[i].from);
			if (was == NULL || strcmp(was, b->map[i].to) != 0)
				diff_line(out, c, D_CHANGE, "partner %s: column %s: '%s' now generalizes to '%s'", pid,
				    a->name, b->map[i].from, b->map[i].to);
		}
		for (i = 0; i < a->nmap; i++)
			if (diff_map(b, a->map[i].from) == NULL)
				diff_line(out, c, D_CHANGE, "partner %s: column %s: '%s' now generalizes to '%s'", pid,
				    a->name, a->map[i].from, b->other ? b->other : "?");
	}
}

static void
diff_partner(const struct policy_partner *a, const struct policy_partner *b, FILE *out, struct policy_diff_counts *c)
{
	char ha[17], hb[17];
	size_t i;

	if (memcmp(a->signing_key_id, b->signing_key_id, sizeof(a->signing_key_id)) != 0) {
		keyfile_id_hex(a->signing_key_id, ha);
		keyfile_id_hex(b->signing_key_id, hb);
		diff_line(out, c, D_BREAKS, "partner %s: signing key %s -> %s (batches signed with the old key are "
		    "refused)", a->id, ha, hb);
	}
	for (i = 0; i < b->ncolumns; i++) {
		const struct policy_column *ca = policy_column_find(a, b->columns[i].name);
		if (ca == NULL)
			diff_line(out, c, diff_shared(b->columns[i].role) ? D_WIDER : D_CHANGE,
			    "partner %s: new column %s (%s)", a->id, b->columns[i].name, diff_role(b->columns[i].role));
		else
			diff_column(a->id, ca, &b->columns[i], out, c);
	}
	for (i = 0; i < a->ncolumns; i++)
		if (policy_column_find(b, a->columns[i].name) == NULL)
			diff_line(out, c, diff_shared(a->columns[i].role) ? D_NARROWER : D_CHANGE,
			    "partner %s: column %s removed", a->id, a->columns[i].name);
}

/* A decimal in nano units, for messages. */
static double
diff_nano(int64_t v)
{
	return (double)v / 1e9;
}

/* Does `bits` (purposes of policy x) name a purpose that `obits` (of policy o) lacks?  By name: bits move. */
static int
diff_more_purposes(const struct policy *x, uint32_t bits, const struct policy *o, uint32_t obits)
{
	size_t i;
	int ob;

	for (i = 0; i < x->npurposes; i++)
		if ((bits & (UINT32_C(1) << i)) &&
		    ((ob = policy_purpose_bit(o, x->purposes[i])) < 0 || !(obits & (UINT32_C(1) << ob))))
			return 1;
	return 0;
}

/* Audiences (marketing:): a partner newly allowed to receive or source, or a lower bar, widens. */
static void
diff_marketing(const struct policy *a, const struct policy *b, FILE *out, struct policy_diff_counts *c)
{
	const struct policy_marketing *x = &a->marketing, *y = &b->marketing;
	size_t i;

	for (i = 0; i < b->npartners; i++) {
		const char *id = b->partners[i].id;
		int ra = policy_partner_find(a, id) != NULL && policy_partner_may_receive(a, id);
		int rb = policy_partner_may_receive(b, id);
		int sa = policy_partner_find(a, id) != NULL && policy_partner_may_source(a, id);
		int sb = policy_partner_may_source(b, id);

		if (ra != rb)
			diff_line(out, c, rb ? D_WIDER : D_NARROWER, "marketing: partner '%s' %s receive audiences", id,
			    rb ? "may now" : "may no longer");
		if (sa != sb)
			diff_line(out, c, sb ? D_WIDER : D_NARROWER, "marketing: partner '%s' %s select audiences (source)",
			    id, sb ? "may now" : "may no longer");
	}
	if (x->min_audience != y->min_audience)
		diff_line(out, c, y->min_audience < x->min_audience ? D_WIDER : D_NARROWER,
		    "marketing: min_audience %u -> %u", x->min_audience, y->min_audience);
	if (x->refusal_noise != y->refusal_noise)
		diff_line(out, c, y->refusal_noise < x->refusal_noise ? D_WIDER : D_NARROWER,
		    "marketing: refusal_noise %u -> %u", x->refusal_noise, y->refusal_noise);
	if (x->max_refusals != y->max_refusals)
		diff_line(out, c, y->max_refusals > x->max_refusals ? D_WIDER : D_NARROWER,
		    "marketing: max_refusals %u -> %u", x->max_refusals, y->max_refusals);
	if (x->audience_rho_nano != y->audience_rho_nano)
		diff_line(out, c, D_CHANGE, "marketing: audience rho %.9g -> %.9g", diff_nano(x->audience_rho_nano),
		    diff_nano(y->audience_rho_nano));
	if (x->holdout_nano != y->holdout_nano)
		diff_line(out, c, D_CHANGE, "marketing: holdout %.9g -> %.9g", diff_nano(x->holdout_nano),
		    diff_nano(y->holdout_nano));
	if (x->value_cap != y->value_cap)
		/* the noise scales with the cap: a change of utility, not of privacy */
		diff_line(out, c, D_CHANGE, "marketing: value_cap %lld -> %lld", (long long)x->value_cap, (long long)y->value_cap);
	if (x->lift_rho_nano != y->lift_rho_nano)
		diff_line(out, c, D_CHANGE, "marketing: lift rho %.9g -> %.9g", diff_nano(x->lift_rho_nano),
		    diff_nano(y->lift_rho_nano));
}

static void
diff_privacy(const struct policy *a, const struct policy *b, FILE *out, struct policy_diff_counts *c)
{
	const struct policy_privacy *x = &a->privacy, *y = &b->privacy;
	size_t i;

	if (x->threshold != y->threshold)
		diff_line(out, c, y->threshold < x->threshold ? D_WIDER : D_NARROWER, "privacy: threshold %u -> %u",
		    x->threshold, y->threshold);
	if (x->budget_rho_nano != y->budget_rho_nano)
		diff_line(out, c, y->budget_rho_nano > x->budget_rho_nano ? D_WIDER : D_NARROWER,
		    "privacy: default budget rho %.9g -> %.9g", diff_nano(x->budget_rho_nano), diff_nano(y->budget_rho_nano));
	if (x->query_rho_nano != y->query_rho_nano)
		diff_line(out, c, D_CHANGE, "privacy: default query rho %.9g -> %.9g", diff_nano(x->query_rho_nano),
		    diff_nano(y->query_rho_nano));
	if (x->export_rho_nano != y->export_rho_nano)
		diff_line(out, c, D_CHANGE, "privacy: default export rho %.9g -> %.9g", diff_nano(x->export_rho_nano),
		    diff_nano(y->export_rho_nano));
	if (x->partition_delta != y->partition_delta)
		diff_line(out, c, y->partition_delta > x->partition_delta ? D_WIDER : D_NARROWER,
		    "privacy: partition_delta %g -> %g", x->partition_delta, y->partition_delta);
	if (x->l != y->l)
		diff_line(out, c, y->l < x->l ? D_WIDER : D_NARROWER, "privacy: l-diversity l %u -> %u", x->l, y->l);
	if (x->suppression_ppm != y->suppression_ppm)
		diff_line(out, c, y->suppression_ppm > x->suppression_ppm ? D_WIDER : D_NARROWER,
		    "privacy: suppression limit %.4g%% -> %.4g%%", x->suppression_ppm / 1e4, y->suppression_ppm / 1e4);
	if (x->max_exports != y->max_exports)
		diff_line(out, c, y->max_exports > x->max_exports ? D_WIDER : D_NARROWER,
		    "privacy: default max_exports %u -> %u", x->max_exports, y->max_exports);
	for (i = 0; i < b->nprincipals; i++) {
		const struct policy_principal *pb = &b->principals[i];
		const struct policy_principal *pa = policy_principal_by_name(a, pb->name);
		int64_t ba, bb;
		uint32_t ma, mb;

		if (pb->role != POLICY_PRINCIPAL_ANALYST)
			continue;
		if (pa == NULL || pa->role != POLICY_PRINCIPAL_ANALYST) {
			diff_line(out, c, D_WIDER, "principals: new analyst '%s'", pb->name);
			continue;
		}
		if (diff_more_purposes(b, pb->purpose_bits, a, pa->purpose_bits))
			diff_line(out, c, D_WIDER, "principals: analyst '%s' gains purposes", pb->name);
		if (diff_more_purposes(a, pa->purpose_bits, b, pb->purpose_bits))
			diff_line(out, c, D_NARROWER, "principals: analyst '%s' loses purposes", pb->name);
		if (diff_more_purposes(b, pb->row_export_bits, a, pa->row_export_bits))
			diff_line(out, c, D_WIDER, "principals: analyst '%s' may take row exports for more purposes", pb->name);
		if (diff_more_purposes(a, pa->row_export_bits, b, pb->row_export_bits))
			diff_line(out, c, D_NARROWER, "principals: analyst '%s' may take row exports for fewer purposes",
			    pb->name);
		ba = policy_principal_budget(a, pa);
		bb = policy_principal_budget(b, pb);
		if (ba != bb)
			diff_line(out, c, bb > ba ? D_WIDER : D_NARROWER, "principals: analyst '%s' budget rho %.9g -> %.9g",
			    pb->name, diff_nano(ba), diff_nano(bb));
		ma = policy_principal_max_exports(a, pa);
		mb = policy_principal_max_exports(b, pb);
		if (ma != mb)
			diff_line(out, c, mb > ma ? D_WIDER : D_NARROWER, "principals: analyst '%s' max_exports %u -> %u",
			    pb->name, ma, mb);
	}
	for (i = 0; i < a->nprincipals; i++) {
		const struct policy_principal *pb = policy_principal_by_name(b, a->principals[i].name);

		if (a->principals[i].role == POLICY_PRINCIPAL_ANALYST && (pb == NULL || pb->role != POLICY_PRINCIPAL_ANALYST))
			diff_line(out, c, D_NARROWER, "principals: analyst '%s' removed", a->principals[i].name);
	}
}

void
policy_diff(const struct policy *a, const struct policy *b, FILE *out, struct policy_diff_counts *c)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	if (a->k != b->k)
		diff_line(out, c, b->k < a->k ? D_WIDER : D_NARROWER, "k-anonymity: k %u -> %u", a->k, b->k);
	for (i = 0; i < b->npurposes; i++)
		if (policy_purpose_bit(a, b->purposes[i]) < 0)
			diff_line(out, c, D_WIDER, "purposes: new purpose '%s'", b->purposes[i]);
	for (i = 0; i < a->npurposes; i++) {
		int bit = policy_purpose_bit(b, a->purposes[i]);
		if (bit < 0)
			diff_line(out, c, D_NARROWER, "purposes: purpose '%s' removed", a->purposes[i]);
		else if ((size_t)bit != i)
			diff_line(out, c, D_BREAKS, "purposes: '%s' moved from bit %zu to %d: stored consent bits "
			    "would be read as other purposes", a->purposes[i], i, bit);
	}
	if (strcmp(a->default_country, b->default_country) != 0)
		diff_line(out, c, D_BREAKS, "normalization: default phone country %s -> %s: national numbers get "
		    "other tokens", a->default_country, b->default_country);
	if (a->phone_never != b->phone_never)
		diff_line(out, c, b->phone_never ? D_NARROWER : D_WIDER, "matching: phone_matching %s -> %s: %s",
		    a->phone_never ? "never" : "unique", b->phone_never ? "never" : "unique", b->phone_never ?
		    "users known to one partner by their phone only are no longer matched" :
		    "a phone now pairs users that no email pairs");
	if (a->email.gmail_dots != b->email.gmail_dots || a->email.plus_tags != b->email.plus_tags ||
	    a->email.plus_tags_all != b->email.plus_tags_all || a->email.googlemail != b->email.googlemail)
		diff_line(out, c, D_BREAKS, "normalization: email rules changed: some addresses get other tokens");
	for (i = 0; i < b->npartners; i++) {
		const struct policy_partner *pa = policy_partner_find(a, b->partners[i].id);
		if (pa == NULL)
			diff_line(out, c, D_WIDER, "partners: new partner '%s'", b->partners[i].id);
		else
			diff_partner(pa, &b->partners[i], out, c);
	}
	for (i = 0; i < a->npartners; i++)
		if (policy_partner_find(b, a->partners[i].id) == NULL)
			diff_line(out, c, D_NARROWER, "partners: partner '%s' removed", a->partners[i].id);
	diff_privacy(a, b, out, c);
	diff_marketing(a, b, out, c);
}
