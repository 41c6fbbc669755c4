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
}
