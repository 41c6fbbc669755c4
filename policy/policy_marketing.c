/* policy_marketing.c - the `marketing:` section (policy.h): who may receive audiences, and from which sources */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"

/* A list of partner ids into a bit set of partner indices. */
static void
parse_partner_set(struct pctx *c, struct fy_node *n, struct pos keypos, const struct policy *p, const char *what,
    uint64_t *out)
{
	struct fy_node *item;
	void *it = NULL;

	*out = 0;
	if (policy_want_sequence(c, n, keypos, what) != 0)
		return;
	while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
		struct pos at = policy_node_pos(item, keypos);
		size_t i;
		char *s;

		if (policy_get_str(c, item, keypos, what, POLICY_VALUE_MAX, &s) != 0)
			continue;
		for (i = 0; i < p->npartners; i++)
			if (p->partners[i].id != NULL && strcmp(p->partners[i].id, s) == 0)
				break;
		if (i == p->npartners)
			policy_problem(c, at, "marketing: %s: '%s' is not a partner of the policy", what,
			    policy_id_ok(s, POLICY_ID_MAX) ? s : "?");
		else if (*out & (UINT64_C(1) << i))
			policy_problem(c, at, "marketing: %s: duplicate partner '%s'", what, s);
		else
			*out |= UINT64_C(1) << i;
		free(s);
	}
}

void
policy_parse_marketing(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy *p)
{
	struct policy_marketing *m = &p->marketing;
	struct fy_node_pair *pair;
	void *it = NULL;
	struct key k;
	uint64_t v;
	int64_t nano;

	if (policy_want_mapping(c, n, keypos, "marketing") != 0)
		return;
	m->present = 1;
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *val = fy_node_pair_value(pair);

		if (policy_key_of(c, pair, keypos, &k) != 0)
			continue;
		v = 0;
		if (policy_key_is(&k, "min_audience")) {
			policy_get_u32_range(c, val, k.at, "min_audience", 1, 1000000000, &v);
			if (v)
				m->min_audience = (uint32_t)v;
		} else if (policy_key_is(&k, "receivers")) {
			parse_partner_set(c, val, k.at, p, "receivers", &m->receivers);
		} else if (policy_key_is(&k, "sources")) {
			parse_partner_set(c, val, k.at, p, "sources", &m->sources);
			m->has_sources = 1;
		} else if (policy_key_is(&k, "refusal_noise")) {
			policy_get_u32_range(c, val, k.at, "refusal_noise", 1, 1000000, &v);
			if (v)
				m->refusal_noise = (uint32_t)v;
		} else if (policy_key_is(&k, "max_refusals")) {
			policy_get_u32_range(c, val, k.at, "max_refusals", 0, 1000000, &v);
			m->max_refusals = (uint32_t)v;
		} else if (policy_key_is(&k, "audience_rho")) {
			if (policy_get_nano(c, val, k.at, "audience_rho", &nano) == 0)
				m->audience_rho_nano = nano;
		} else if (policy_key_is(&k, "holdout")) {
			if (policy_get_nano(c, val, k.at, "holdout", &nano) == 0) {
				if (nano >= BILLION)
					policy_problem(c, policy_node_pos(val, k.at), "marketing: holdout must be above 0 and "
					    "below 1");
				else
					m->holdout_nano = nano;
			}
		} else if (policy_key_is(&k, "value_cap")) {
			/* the lift's bound (gateway/lift.h: LIFT_VALUE_CAP_MAX) */
			policy_get_u32_range(c, val, k.at, "value_cap", 1, 1000000000, &v);
			if (v)
				m->value_cap = (int64_t)v;
		} else if (policy_key_is(&k, "lift_rho")) {
			if (policy_get_nano(c, val, k.at, "lift_rho", &nano) == 0)
				m->lift_rho_nano = nano;
		} else
			policy_unknown_key(c, &k, "in marketing");
	}
	if (m->audience_rho_nano > p->privacy.budget_rho_nano)
		policy_problem(c, keypos, "marketing: audience_rho is larger than privacy.budget_rho");
	if (m->lift_rho_nano > p->privacy.budget_rho_nano)
		policy_problem(c, keypos, "marketing: lift_rho is larger than privacy.budget_rho");
}

int
policy_partner_may_receive(const struct policy *p, const char *id)
{
	size_t i;

	for (i = 0; i < p->npartners; i++)
		if (strcmp(p->partners[i].id, id) == 0)
			return (p->marketing.receivers >> i) & 1;
	return 0;
}

int
policy_partner_may_source(const struct policy *p, const char *id)
{
	size_t i;

	for (i = 0; i < p->npartners; i++)
		if (strcmp(p->partners[i].id, id) == 0)
			return p->marketing.has_sources ? (int)((p->marketing.sources >> i) & 1) : 0;
	return 0;
}
