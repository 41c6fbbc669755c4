/* policy_schema.c - see policy.h; the columns and partners sections (policy_int.h) */
#include "policy/policy.h"
#include "policy/policy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libfyaml.h>
#include <sodium.h>

#include "crypto/keyfile.h"
#include "crypto/token.h"

/* ---- columns ---- */

struct colkeys {
	struct pos at, type, role, kind, required, min, max, values, gen, band, map, other;
	int seen_name, seen_type, seen_role, seen_kind, seen_required, seen_values, seen_gen;
	int seen_band, seen_map, seen_other;
	struct pos pub, sens, bounds;
	int seen_public, seen_bounds;
};

static int
parse_type(const char *s, enum policy_type *t)
{
	static const struct { const char *name; enum policy_type t; } tab[] = {
		{ "string", POLICY_TYPE_STRING }, { "int", POLICY_TYPE_INT },
		{ "category", POLICY_TYPE_CATEGORY }, { "purposes", POLICY_TYPE_PURPOSES },
		{ "timestamp", POLICY_TYPE_TIMESTAMP },
	};
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcmp(s, tab[i].name) == 0) {
			*t = tab[i].t;
			return 0;
		}
	return -1;
}

static int
parse_role(const char *s, enum policy_role *r)
{
	static const struct { const char *name; enum policy_role r; } tab[] = {
		{ "local_id", POLICY_ROLE_LOCAL_ID }, { "identifier", POLICY_ROLE_IDENTIFIER },
		{ "consent", POLICY_ROLE_CONSENT }, { "consent_time", POLICY_ROLE_CONSENT_TIME },
		{ "feature", POLICY_ROLE_FEATURE }, { "quasi_identifier", POLICY_ROLE_QUASI },
	};
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcmp(s, tab[i].name) == 0) {
			*r = tab[i].r;
			return 0;
		}
	return -1;
}

/*
 * The items of a sequence as a zeroed array of `elem`-byte entries (*out,
 * owned by the caller), at most `max` of them (`too_many` is the problem
 * reported beyond).  Returns how many items there are: 0 when n is not a
 * sequence, is empty, is too long or memory ran out (each reported but the
 * empty case, which callers judge).
 */
size_t
policy_items_alloc(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, size_t max, const char *too_many,
    size_t elem, void **out)
{
	size_t count;

	*out = NULL;
	if (policy_want_sequence(c, n, keypos, what) != 0)
		return 0;
	count = (size_t)fy_node_sequence_item_count(n);
	if (count > max) {
		policy_problem(c, keypos, "%s", too_many);
		return 0;
	}
	if (count != 0 && (*out = calloc(count, elem)) == NULL) {
		c->nomem = 1;
		return 0;
	}
	return count;
}

static void
parse_values(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy_column *col)
{
	struct fy_node *item;
	void *it = NULL, *arr;
	char too_many[64];
	size_t i;

	snprintf(too_many, sizeof(too_many), "more than %d category values", POLICY_VALUES_MAX);
	if (policy_items_alloc(c, n, keypos, "values", POLICY_VALUES_MAX, too_many, sizeof(*col->values), &arr) == 0)
		return;
	col->values = arr;
	while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
		char *v;

		if (policy_get_str(c, item, keypos, "a category value", POLICY_VALUE_MAX, &v) != 0)
			continue;
		for (i = 0; i < col->nvalues; i++)
			if (strcmp(col->values[i], v) == 0)
				break;
		if (i < col->nvalues) {
			policy_problem(c, policy_node_pos(item, keypos), "duplicate category value in column '%s'",
			    col->name != NULL ? col->name : "?");
			free(v);
			continue;
		}
		col->values[col->nvalues++] = v;
	}
}

static void
parse_map(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy_column *col)
{
	struct fy_node_pair *pair;
	void *it = NULL;
	size_t count;

	if (policy_want_mapping(c, n, keypos, "map") != 0)
		return;
	count = (size_t)fy_node_mapping_item_count(n);
	if (count > POLICY_VALUES_MAX) {
		policy_problem(c, keypos, "more than %d map entries", POLICY_VALUES_MAX);
		return;
	}
	if (count == 0) {
		policy_problem(c, keypos, "map is empty");
		return;
	}
	if ((col->map = calloc(count, sizeof(*col->map))) == NULL) {
		c->nomem = 1;
		return;
	}
	/* libfyaml already rejects duplicate keys, so each `from` is unique. */
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct policy_map_entry *e = &col->map[col->nmap];
		struct pos at = policy_node_pos(fy_node_pair_key(pair), keypos);

		if (policy_get_str(c, fy_node_pair_key(pair), keypos, "a map key", POLICY_VALUE_MAX,
		    &e->from) != 0)
			continue;
		if (policy_get_str(c, fy_node_pair_value(pair), at, "a map group", POLICY_VALUE_MAX,
		    &e->to) != 0) {
			free(e->from);
			e->from = NULL;
			continue;
		}
		col->nmap++;
	}
}

/* `band: 10` or a hierarchy `band: [10, 20, 50]` of increasing widths. */
static void
parse_bands(struct pctx *c, struct fy_node *v, struct pos keypos, struct policy_column *col)
{
	struct fy_node *item;
	void *it = NULL;
	int64_t b;

	if (v != NULL && fy_node_is_sequence(v)) {
		if (fy_node_sequence_item_count(v) == 0 || fy_node_sequence_item_count(v) > POLICY_BANDS_MAX) {
			policy_problem(c, policy_node_pos(v, keypos), "band hierarchy needs 1 to %d widths", POLICY_BANDS_MAX);
			return;
		}
		while ((item = fy_node_sequence_iterate(v, &it)) != NULL) {
			if (policy_get_int(c, item, keypos, "band", &b) != 0)
				return;
			if (b <= 0 || (col->nbands > 0 && b <= col->bands[col->nbands - 1])) {
				policy_problem(c, policy_node_pos(item, keypos), "band widths must be positive and increasing");
				return;
			}
			col->bands[col->nbands++] = b;
		}
	} else {
		if (policy_get_int(c, v, keypos, "band", &b) != 0)
			return;
		if (b <= 0) {
			policy_problem(c, policy_node_pos(v, keypos), "band must be positive");
			return;
		}
		col->bands[col->nbands++] = b;
	}
	col->band = col->bands[0];
}

/* `bounds: [lo, hi]` of an int column. */
static void
parse_bounds(struct pctx *c, struct fy_node *v, struct pos keypos, struct policy_column *col)
{
	struct fy_node *lo, *hi;

	if (v == NULL || !fy_node_is_sequence(v) || fy_node_sequence_item_count(v) != 2) {
		policy_problem(c, policy_node_pos(v, keypos), "bounds must be a list [lo, hi]");
		return;
	}
	lo = fy_node_sequence_get_by_index(v, 0);
	hi = fy_node_sequence_get_by_index(v, 1);
	if (policy_get_int(c, lo, keypos, "lower bound", &col->lo) != 0 || policy_get_int(c, hi, keypos, "upper bound", &col->hi) != 0)
		return;
	if (col->lo > col->hi)
		policy_problem(c, policy_node_pos(v, keypos), "bounds: lo is greater than hi");
	else if (col->lo < -POLICY_BOUND_MAX || col->hi > POLICY_BOUND_MAX)
		policy_problem(c, policy_node_pos(v, keypos), "bounds must lie within +-%lld", (long long)POLICY_BOUND_MAX);
	else
		col->has_bounds = 1;
}

static void
parse_generalize(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy_column *col,
    struct colkeys *ck)
{
	struct fy_node_pair *pair;
	void *it = NULL;
	char where[POLICY_COLNAME_MAX + 64];
	struct key k;

	if (policy_want_mapping(c, n, keypos, "generalize") != 0)
		return;
	snprintf(where, sizeof(where), "in generalize of column '%s'",
	    col->name != NULL ? col->name : "?");
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *v = fy_node_pair_value(pair);

		if (policy_key_of(c, pair, keypos, &k) != 0)
			continue;
		if (policy_key_is(&k, "band")) {
			ck->seen_band = 1;
			ck->band = k.at;
			parse_bands(c, v, k.at, col);
		} else if (policy_key_is(&k, "map")) {
			ck->seen_map = 1;
			ck->map = k.at;
			parse_map(c, v, k.at, col);
		} else if (policy_key_is(&k, "other")) {
			ck->seen_other = 1;
			ck->other = k.at;
			(void)policy_get_str(c, v, k.at, "other", POLICY_VALUE_MAX, &col->other);
		} else
			policy_unknown_key(c, &k, where);
	}
}

/* The column's name first, so that every later message can name it. */
static void
column_name(struct pctx *c, struct fy_node *n, struct pos at, struct policy_column *col,
    struct colkeys *ck)
{
	struct fy_node_pair *pair;
	void *it = NULL;
	struct key k;

	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		if (!policy_pair_key_is(pair, "name") || policy_key_of(c, pair, at, &k) != 0)
			continue;
		ck->seen_name = 1;
		if (policy_get_str(c, fy_node_pair_value(pair), k.at, "column name", POLICY_VALUE_MAX,
		    &col->name) != 0)
			return;
		if (!policy_colname_ok(col->name)) {
			policy_problem(c, policy_node_pos(fy_node_pair_value(pair), k.at),
			    "bad column name (want [A-Za-z0-9_.-]{1,%d})", POLICY_COLNAME_MAX);
			free(col->name);
			col->name = NULL;
		}
		return;
	}
}

static void
parse_column(struct pctx *c, struct fy_node *n, struct pos fallback, struct policy_column *col)
{
	struct colkeys ck;
	struct fy_node_pair *pair;
	void *it = NULL;
	char where[POLICY_COLNAME_MAX + 32];
	const char *cn;
	int type_ok = 0, role_ok = 0;
	struct key k;
	char *s;

	memset(&ck, 0, sizeof(ck));
	ck.at = policy_node_pos(n, fallback);
	col->line = (size_t)ck.at.line;
	if (policy_want_mapping(c, n, fallback, "a column") != 0)
		return;
	column_name(c, n, ck.at, col, &ck);
	cn = col->name != NULL ? col->name : "?";
	snprintf(where, sizeof(where), "in column '%s'", cn);

	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *v = fy_node_pair_value(pair);

		if (policy_key_of(c, pair, ck.at, &k) != 0)
			continue;
		if (policy_key_is(&k, "name")) {
			continue;
		} else if (policy_key_is(&k, "type")) {
			ck.seen_type = 1;
			ck.type = policy_node_pos(v, k.at);
			if (policy_get_str(c, v, k.at, "type", POLICY_VALUE_MAX, &s) != 0)
				continue;
			if (parse_type(s, &col->type) == 0)
				type_ok = 1;
			else
				policy_problem(c, ck.type, "unknown type in column '%s' (want string, int, "
				    "category, purposes or timestamp)", cn);
			free(s);
		} else if (policy_key_is(&k, "role")) {
			ck.seen_role = 1;
			ck.role = policy_node_pos(v, k.at);
			if (policy_get_str(c, v, k.at, "role", POLICY_VALUE_MAX, &s) != 0)
				continue;
			if (parse_role(s, &col->role) == 0)
				role_ok = 1;
			else
				policy_problem(c, ck.role, "unknown role in column '%s' (want local_id, "
				    "identifier, consent, consent_time, feature or quasi_identifier)", cn);
			free(s);
		} else if (policy_key_is(&k, "kind")) {
			ck.seen_kind = 1;
			ck.kind = policy_node_pos(v, k.at);
			if (policy_get_str(c, v, k.at, "kind", POLICY_VALUE_MAX, &s) != 0)
				continue;
			if (strcmp(s, "email") == 0)
				col->id_kind = TOKEN_KIND_EMAIL;
			else if (strcmp(s, "phone") == 0)
				col->id_kind = TOKEN_KIND_PHONE;
			else
				policy_problem(c, ck.kind, "unknown kind in column '%s' (want email or phone)",
				    cn);
			free(s);
		} else if (policy_key_is(&k, "required")) {
			ck.seen_required = 1;
			ck.required = k.at;
			(void)policy_get_bool(c, v, k.at, "required", &col->required);
		} else if (policy_key_is(&k, "min")) {
			ck.min = k.at;
			if (policy_get_int(c, v, k.at, "min", &col->min) == 0)
				col->has_min = 1;
		} else if (policy_key_is(&k, "max")) {
			ck.max = k.at;
			if (policy_get_int(c, v, k.at, "max", &col->max) == 0)
				col->has_max = 1;
		} else if (policy_key_is(&k, "values")) {
			ck.seen_values = 1;
			ck.values = k.at;
			parse_values(c, v, k.at, col);
		} else if (policy_key_is(&k, "generalize")) {
			ck.seen_gen = 1;
			ck.gen = k.at;
			parse_generalize(c, v, k.at, col, &ck);
		} else if (policy_key_is(&k, "public")) {
			ck.seen_public = 1;
			ck.pub = k.at;
			(void)policy_get_bool(c, v, k.at, "public", &col->is_public);
		} else if (policy_key_is(&k, "sensitive")) {
			ck.sens = k.at;
			(void)policy_get_bool(c, v, k.at, "sensitive", &col->sensitive);
		} else if (policy_key_is(&k, "bounds")) {
			ck.seen_bounds = 1;
			ck.bounds = k.at;
			parse_bounds(c, v, k.at, col);
		} else if (policy_key_is(&k, "purposes")) {
			/* names only here: the policy's purposes may be written after the partners */
			struct fy_node *item;
			void *pit = NULL;
			col->has_purposes = 1;
			col->purposes_line = k.at.line;
			col->purposes_col = k.at.col;
			if (policy_want_sequence(c, v, k.at, "column purposes") != 0)
				continue;
			if ((col->purpose_names = calloc((size_t)fy_node_sequence_item_count(v) + 1,
			    sizeof(char *))) == NULL) {
				c->nomem = 1;
				continue;
			}
			while ((item = fy_node_sequence_iterate(v, &pit)) != NULL) {
				if (policy_get_str(c, item, k.at, "a column purpose", POLICY_VALUE_MAX,
				    &col->purpose_names[col->npurpose_names]) == 0)
					col->npurpose_names++;
			}
		} else
			policy_unknown_key(c, &k, where);
	}

	if (!ck.seen_name)
		policy_problem(c, ck.at, "column without a name");
	if (!ck.seen_type)
		policy_problem(c, ck.at, "column '%s' has no type", cn);
	if (!ck.seen_role)
		policy_problem(c, ck.at, "column '%s' has no role", cn);

	/* Defaults, then the combinations that only make sense together. */
	if (!ck.seen_required && role_ok)
		col->required = col->role != POLICY_ROLE_IDENTIFIER &&
		    col->role != POLICY_ROLE_LOCAL_ID;
	if (ck.seen_band && ck.seen_map)
		policy_problem(c, ck.map, "generalize of column '%s' has both band and map", cn);
	else if (ck.seen_band)
		col->gen = POLICY_GEN_BAND;
	else if (ck.seen_map)
		col->gen = POLICY_GEN_MAP;
	if (ck.seen_map && !ck.seen_other)
		policy_problem(c, ck.map, "map of column '%s' needs 'other'", cn);
	if (ck.seen_other && !ck.seen_map)
		policy_problem(c, ck.other, "'other' of column '%s' needs a map", cn);
	if (ck.seen_gen && !ck.seen_band && !ck.seen_map)
		policy_problem(c, ck.gen, "generalize of column '%s' needs band or map", cn);

	if (type_ok) {
		if ((col->has_min || col->has_max) && col->type != POLICY_TYPE_INT)
			policy_problem(c, col->has_min ? ck.min : ck.max,
			    "min/max only apply to int columns ('%s')", cn);
		if (col->has_min && col->has_max && col->min > col->max)
			policy_problem(c, ck.min, "min is greater than max in column '%s'", cn);
		if (col->type == POLICY_TYPE_CATEGORY && col->nvalues == 0 && !ck.seen_values)
			policy_problem(c, ck.type, "category column '%s' needs values", cn);
		else if (col->type == POLICY_TYPE_CATEGORY && col->nvalues == 0)
			policy_problem(c, ck.values, "category column '%s' needs values", cn);
		if (ck.seen_values && col->type != POLICY_TYPE_CATEGORY)
			policy_problem(c, ck.values, "values only apply to category columns ('%s')", cn);
		if (ck.seen_band && col->type != POLICY_TYPE_INT)
			policy_problem(c, ck.band, "band needs an int column ('%s')", cn);
		if (ck.seen_map && col->type == POLICY_TYPE_INT)
			policy_problem(c, ck.map, "map on an int column ('%s'); use band", cn);
		else if (ck.seen_map && col->type != POLICY_TYPE_STRING &&
		    col->type != POLICY_TYPE_CATEGORY)
			policy_problem(c, ck.map, "map needs a string or category column ('%s')", cn);
	}
	if (!role_ok)
		return;
	if (col->role == POLICY_ROLE_IDENTIFIER) {
		if (!ck.seen_kind)
			policy_problem(c, ck.role, "identifier column '%s' needs a kind (email or phone)",
			    cn);
		if (ck.seen_required && col->required)
			policy_problem(c, ck.required, "identifier column '%s' cannot be required: "
			    "identifiers are optional one by one", cn);
	} else if (ck.seen_kind)
		policy_problem(c, ck.kind, "kind only applies to identifier columns ('%s')", cn);
	if ((col->role == POLICY_ROLE_CONSENT || col->role == POLICY_ROLE_CONSENT_TIME) &&
	    ck.seen_required && !col->required)
		policy_problem(c, ck.required, "consent column '%s' cannot be optional", cn);
	if (col->role == POLICY_ROLE_QUASI && !ck.seen_gen)
		policy_problem(c, ck.role, "quasi_identifier column '%s' needs generalize", cn);
	if (col->role != POLICY_ROLE_QUASI && ck.seen_gen)
		policy_problem(c, ck.gen, "generalize only applies to quasi_identifier columns ('%s')",
		    cn);
	if (type_ok && ck.seen_bounds && col->type != POLICY_TYPE_INT)
		policy_problem(c, ck.bounds, "bounds only apply to int columns ('%s')", cn);
	if ((col->is_public || col->sensitive || ck.seen_bounds) && col->role != POLICY_ROLE_FEATURE &&
	    col->role != POLICY_ROLE_QUASI)
		policy_problem(c, col->is_public ? ck.pub : col->sensitive ? ck.sens : ck.bounds,
		    "public, sensitive and bounds only apply to feature and quasi_identifier columns ('%s')", cn);
	/* A public column's keys are enumerated from the policy: it needs a finite, declared domain. */
	if (type_ok && col->is_public && !(col->role == POLICY_ROLE_QUASI && col->gen == POLICY_GEN_MAP) &&
	    !(col->role == POLICY_ROLE_QUASI && col->gen == POLICY_GEN_BAND && col->band > 0 && col->has_min && col->has_max &&
	    ((__int128)col->max - col->min) / col->band < 4096) && col->type != POLICY_TYPE_CATEGORY)
		policy_problem(c, ck.pub, "public column '%s' needs a declared domain: category values, a map, or a band "
		    "with min and max (at most 4096 bands)", cn);
	if (type_ok && col->sensitive && col->role != POLICY_ROLE_FEATURE)
		policy_problem(c, ck.sens, "only a feature can be sensitive ('%s')", cn);
	if (!type_ok)
		return;
	switch (col->role) {
	case POLICY_ROLE_LOCAL_ID:
	case POLICY_ROLE_IDENTIFIER:
		if (col->type != POLICY_TYPE_STRING)
			policy_problem(c, ck.type, "column '%s' must have type string for its role", cn);
		break;
	case POLICY_ROLE_CONSENT:
		if (col->type != POLICY_TYPE_PURPOSES)
			policy_problem(c, ck.type, "consent column '%s' must have type purposes", cn);
		break;
	case POLICY_ROLE_CONSENT_TIME:
		if (col->type != POLICY_TYPE_TIMESTAMP)
			policy_problem(c, ck.type, "consent_time column '%s' must have type timestamp",
			    cn);
		break;
	case POLICY_ROLE_FEATURE:
	case POLICY_ROLE_QUASI:
		if (col->type == POLICY_TYPE_PURPOSES)
			policy_problem(c, ck.type, "type purposes is only for the consent column ('%s')",
			    cn);
		break;
	}
}

/* ---- partners ---- */

static void
parse_signing_key(struct pctx *c, struct fy_node *v, struct pos keypos, struct policy_partner *pp)
{
	struct keyfile_key *key = NULL;
	struct cg_err kerr;

	cg_err_clear(&kerr);
	if (policy_get_str(c, v, keypos, "signing_key", POLICY_VALUE_MAX, &pp->signing_key) != 0)
		return;
	if (keyfile_parse_public_line(pp->signing_key, strlen(pp->signing_key),
	    KEYFILE_ED25519_PUBLIC, &key, &kerr) != 0) {
		policy_problem(c, policy_node_pos(v, keypos), "bad signing_key of partner '%s': %s",
		    pp->id != NULL ? pp->id : "?", kerr.msg);
		return;
	}
	memcpy(pp->signing_pub, key->pub, sizeof(pp->signing_pub));
	memcpy(pp->signing_key_id, key->id, sizeof(pp->signing_key_id));
	keyfile_free(key);
}

static void
parse_columns(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy_partner *pp)
{
	struct fy_node *item;
	void *it = NULL, *arr;
	char too_many[128];
	size_t j;

	snprintf(too_many, sizeof(too_many), "partner '%s' has more than %d columns", pp->id != NULL ? pp->id : "?",
	    POLICY_COLUMNS_MAX);
	if (policy_items_alloc(c, n, keypos, "columns", POLICY_COLUMNS_MAX, too_many, sizeof(*pp->columns), &arr) == 0)
		return;
	pp->columns = arr;
	while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
		struct policy_column *col = &pp->columns[pp->ncolumns++];

		parse_column(c, item, keypos, col);
		if (col->name == NULL)
			continue;
		for (j = 0; j + 1 < pp->ncolumns; j++)
			if (pp->columns[j].name != NULL && strcmp(pp->columns[j].name, col->name) == 0)
				break;
		if (j + 1 < pp->ncolumns)
			policy_problem(c, policy_node_pos(item, keypos), "duplicate column '%s' in partner '%s'",
			    col->name, pp->id != NULL ? pp->id : "?");
	}
}

static void
parse_partner(struct pctx *c, struct fy_node *n, struct pos fallback, struct policy_partner *pp)
{
	struct fy_node_pair *pair;
	struct fy_node *columns = NULL;
	struct pos at, colpos = { 0, 0 };
	void *it = NULL;
	char where[POLICY_ID_MAX + 32];
	int seen_id = 0, seen_name = 0, seen_key = 0, seen_cols = 0;
	const char *pid;
	size_t i, nid = 0, nconsent = 0, ntime = 0;
	struct key k;

	at = policy_node_pos(n, fallback);
	pp->line = (size_t)at.line;
	if (policy_want_mapping(c, n, fallback, "a partner") != 0)
		return;
	/* The id first, so that every other message can name the partner. */
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		if (!policy_pair_key_is(pair, "id") || policy_key_of(c, pair, at, &k) != 0)
			continue;
		seen_id = 1;
		if (policy_get_str(c, fy_node_pair_value(pair), k.at, "partner id", POLICY_VALUE_MAX,
		    &pp->id) != 0)
			break;
		if (!policy_id_ok(pp->id, POLICY_ID_MAX)) {
			policy_problem(c, policy_node_pos(fy_node_pair_value(pair), k.at),
			    "bad partner id (want [a-z0-9_-]{1,%d})", POLICY_ID_MAX);
			free(pp->id);
			pp->id = NULL;
		}
		break;
	}
	if (!seen_id)
		policy_problem(c, at, "partner without an id");
	snprintf(where, sizeof(where), "in partner '%s'", pp->id != NULL ? pp->id : "?");

	it = NULL;
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *v = fy_node_pair_value(pair);

		if (policy_key_of(c, pair, at, &k) != 0)
			continue;
		if (policy_key_is(&k, "id")) {
			continue;
		} else if (policy_key_is(&k, "name")) {
			seen_name = 1;
			(void)policy_get_str(c, v, k.at, "partner name", POLICY_NAME_MAX, &pp->name);
		} else if (policy_key_is(&k, "signing_key")) {
			seen_key = 1;
			parse_signing_key(c, v, k.at, pp);
		} else if (policy_key_is(&k, "columns")) {
			seen_cols = 1;
			columns = v;
			colpos = k.at;
		} else if (policy_key_is(&k, "retention_days")) {
			int64_t days;
			if (policy_get_int(c, v, k.at, "retention_days", &days) != 0)
				continue;
			if (days < 1 || days > POLICY_RETENTION_DAYS_MAX)
				policy_problem(c, policy_node_pos(v, k.at), "retention_days must be between 1 and %d",
				    POLICY_RETENTION_DAYS_MAX);
			else
				pp->retention_days = (uint32_t)days;
		} else
			policy_unknown_key(c, &k, where);
	}
	pid = pp->id != NULL ? pp->id : "?";
	if (!seen_name)
		policy_problem(c, at, "partner '%s' has no name", pid);
	if (!seen_key)
		policy_problem(c, at, "partner '%s' has no signing_key", pid);
	if (!seen_cols) {
		policy_problem(c, at, "partner '%s' has no columns", pid);
		return;
	}
	parse_columns(c, columns, colpos, pp);
	for (i = 0; i < pp->ncolumns; i++) {
		if (pp->columns[i].role == POLICY_ROLE_IDENTIFIER)
			nid++;
		else if (pp->columns[i].role == POLICY_ROLE_CONSENT)
			nconsent++;
		else if (pp->columns[i].role == POLICY_ROLE_CONSENT_TIME)
			ntime++;
	}
	if (nid == 0)
		policy_problem(c, colpos, "partner '%s' has no identifier column", pid);
	if (nconsent != 1)
		policy_problem(c, colpos, "partner '%s' needs exactly one consent column (found %zu)",
		    pid, nconsent);
	if (ntime != 1)
		policy_problem(c, colpos, "partner '%s' needs exactly one consent_time column (found %zu)",
		    pid, ntime);
}

void
policy_parse_partners(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy *p)
{
	struct fy_node *item;
	void *it = NULL, *arr;
	char too_many[64];
	size_t j;

	snprintf(too_many, sizeof(too_many), "more than %d partners", POLICY_PARTNERS_MAX);
	if (policy_items_alloc(c, n, keypos, "partners", POLICY_PARTNERS_MAX, too_many, sizeof(*p->partners), &arr) == 0) {
		if (n != NULL && fy_node_is_sequence(n) && fy_node_sequence_item_count(n) == 0)
			policy_problem(c, keypos, "no partners");
		return;
	}
	p->partners = arr;
	while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
		struct policy_partner *pp = &p->partners[p->npartners++];

		parse_partner(c, item, keypos, pp);
		if (pp->id == NULL)
			continue;
		for (j = 0; j + 1 < p->npartners; j++)
			if (p->partners[j].id != NULL && strcmp(p->partners[j].id, pp->id) == 0)
				break;
		if (j + 1 < p->npartners)
			policy_problem(c, policy_node_pos(item, keypos), "duplicate partner id '%s'", pp->id);
		/* One key per partner: a shared key would let one sign as the other. */
		if (sodium_is_zero(pp->signing_pub, sizeof(pp->signing_pub)))
			continue;
		for (j = 0; j + 1 < p->npartners; j++)
			if (sodium_memcmp(p->partners[j].signing_pub, pp->signing_pub,
			    sizeof(pp->signing_pub)) == 0)
				break;
		if (j + 1 < p->npartners)
			policy_problem(c, policy_node_pos(item, keypos), "partner '%s' has the same signing_key "
			    "as partner '%s'", pp->id, p->partners[j].id != NULL ?
			    p->partners[j].id : "?");
	}
}

