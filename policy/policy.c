/* policy.c - see policy.h */
#include "policy/policy.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libfyaml.h>
#include <sodium.h>

#include "crypto/keyfile.h"
#include "crypto/token.h"
#include "base/utf8.h"

#define POLICY_NAME_MAX 256          /* policy and partner display names */
#define POLICY_ID_MAX 32             /* partner ids and purpose names */
#define POLICY_COLNAME_MAX 64
#define POLICY_SHOW_MAX 40           /* bytes of an unknown key shown in a message */
#define BILLION 1000000000LL

struct pos {
	int line, col;               /* 1-based */
};

/* The state of one parse: where we are and every problem found so far. */
struct pctx {
	const char *name;
	char **msgs;
	struct pos *at;              /* of each message, to list them in file order */
	size_t n;
	int truncated;
	int nomem;
};

static void pctx_add(struct pctx *c, struct pos at, char *msg);
struct fy_node;
static int get_nano(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, int64_t *out);

static void CG_PRINTF(3, 4)
problem(struct pctx *c, struct pos at, const char *fmt, ...)
{
	char reason[CG_ERR_MSG_MAX], line[CG_ERR_MSG_MAX + 64];
	va_list ap;
	char *m;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (at.line > 0)
		snprintf(line, sizeof(line), "%s:%d:%d: %s", c->name, at.line, at.col, reason);
	else
		snprintf(line, sizeof(line), "%s: %s", c->name, reason);
	if ((m = strdup(line)) == NULL) {
		c->nomem = 1;
		return;
	}
	pctx_add(c, at, m);
}

static void
pctx_add(struct pctx *c, struct pos at, char *msg)
{
	struct pos *na;
	char **nm;

	if (c->truncated) {
		free(msg);
		return;
	}
	if (c->n == POLICY_PROBLEMS_MAX) {
		free(msg);
		c->truncated = 1;
		at.line = INT32_MAX;    /* stays last */
		at.col = 0;
		if ((msg = strdup("too many problems; the rest are not shown")) == NULL) {
			c->nomem = 1;
			return;
		}
	}
	if ((nm = realloc(c->msgs, (c->n + 1) * sizeof(*nm))) == NULL) {
		free(msg);
		c->nomem = 1;
		return;
	}
	c->msgs = nm;
	if ((na = realloc(c->at, (c->n + 1) * sizeof(*na))) == NULL) {
		free(msg);
		c->nomem = 1;
		return;
	}
	c->at = na;
	c->msgs[c->n] = msg;
	c->at[c->n++] = at;
}

/* Stable insertion sort by position: at most POLICY_PROBLEMS_MAX + 1 entries. */
static void
pctx_sort(struct pctx *c)
{
	size_t i, j;

	for (i = 1; i < c->n; i++) {
		struct pos a = c->at[i];
		char *m = c->msgs[i];

		for (j = i; j > 0 && (c->at[j - 1].line > a.line ||
		    (c->at[j - 1].line == a.line && c->at[j - 1].col > a.col)); j--) {
			c->at[j] = c->at[j - 1];
			c->msgs[j] = c->msgs[j - 1];
		}
		c->at[j] = a;
		c->msgs[j] = m;
	}
}

/*
 * Text safe to put in a message: unknown keys come from the file, so they are
 * cut short and anything but printable ASCII (and quotes) is replaced.
 */
static const char *
show(const char *s, size_t len, char out[POLICY_SHOW_MAX + 4])
{
	size_t i, n = len < POLICY_SHOW_MAX ? len : POLICY_SHOW_MAX;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		out[i] = (ch < 0x20 || ch >= 0x7f || ch == '\'' || ch == '"') ? '?' : (char)ch;
	}
	if (n < len) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

static struct pos
mark_pos(const struct fy_mark *m, struct pos fallback)
{
	struct pos p;

	if (m == NULL)
		return fallback;
	p.line = m->line + 1;
	p.col = m->column + 1;
	return p;
}

/*
 * libfyaml 0.7 has no public start mark for a collection node, so a mapping
 * or sequence is placed at its first scalar; an empty one (or a null value)
 * falls back to the key that introduced it.
 */
static struct pos
node_pos(struct fy_node *n, struct pos fallback)
{
	void *it = NULL;
	struct fy_node_pair *pair;
	struct fy_node *item;

	if (n == NULL)
		return fallback;
	if (fy_node_is_scalar(n) || fy_node_is_alias(n))
		return mark_pos(fy_token_start_mark(fy_node_get_scalar_token(n)), fallback);
	if (fy_node_is_mapping(n)) {
		if ((pair = fy_node_mapping_iterate(n, &it)) == NULL)
			return fallback;
		return node_pos(fy_node_pair_key(pair), fallback);
	}
	if ((item = fy_node_sequence_iterate(n, &it)) == NULL)
		return fallback;
	return node_pos(item, fallback);
}

/* A scalar's text, or NULL (with a problem) for a collection, an alias or a null. */
static const char *
scalar_text(struct pctx *c, struct fy_node *n, struct pos at, const char *what, size_t *lenp)
{
	const char *s;

	*lenp = 0;
	if (n == NULL || fy_node_get_type(n) != FYNT_SCALAR) {
		problem(c, at, "%s must be a scalar", what);
		return NULL;
	}
	if (fy_node_get_style(n) == FYNS_ALIAS) {
		problem(c, at, "%s: aliases are not supported", what);
		return NULL;
	}
	/* A plain empty value ("key:") is null, with no token. */
	if (fy_node_get_scalar_token(n) == NULL || (s = fy_node_get_scalar(n, lenp)) == NULL) {
		problem(c, at, "%s has no value", what);
		return NULL;
	}
	return s;
}

static int
get_str(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, size_t max,
    char **out)
{
	struct pos at = node_pos(n, keypos);
	const char *s;
	size_t len;

	*out = NULL;
	if ((s = scalar_text(c, n, at, what, &len)) == NULL)
		return -1;
	if (len == 0) {
		problem(c, at, "%s is empty", what);
		return -1;
	}
	if (len > max) {
		problem(c, at, "%s is longer than %zu bytes", what, max);
		return -1;
	}
	if (memchr(s, '\0', len) != NULL) {
		problem(c, at, "%s contains a NUL byte", what);
		return -1;
	}
	if ((*out = strndup(s, len)) == NULL) {
		c->nomem = 1;
		return -1;
	}
	return 0;
}

/* Decimal, optional '-', no spaces; CG_ERR_LIMIT on overflow, CG_ERR_FORMAT otherwise. */
static int
parse_i64(const char *s, size_t len, int64_t *out)
{
	uint64_t v = 0, lim;
	size_t i = 0;
	int neg = 0;

	*out = 0;
	if (len > 0 && s[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (i == len)
		return CG_ERR_FORMAT;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return CG_ERR_FORMAT;
		d = (unsigned)(s[i] - '0');
		if (v > (lim - d) / 10)
			return CG_ERR_LIMIT;
		v = v * 10 + d;
	}
	if (neg)
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	else
		*out = (int64_t)v;
	return 0;
}

/* An integer (or, with `nano`, a decimal in nano units: policy_parse_nano) scalar. */
static int
get_number(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, int nano, int64_t *out)
{
	struct pos at = node_pos(n, keypos);
	const char *s;
	size_t len;
	int r;

	*out = 0;
	if ((s = scalar_text(c, n, at, what, &len)) == NULL)
		return -1;
	r = nano ? policy_parse_nano(s, len, POLICY_RHO_MAX, out) : parse_i64(s, len, out);
	if (r != 0) {
		if (nano)
			problem(c, at, "%s must be a decimal number above 0 and at most 1000000, with at most 9 "
			    "decimals", what);
		else
			problem(c, at, "%s %s", what, r == CG_ERR_LIMIT ? "is out of range" : "is not an integer");
		return -1;
	}
	return 0;
}

static int
get_int(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, int64_t *out)
{
	return get_number(c, n, keypos, what, 0, out);
}

static int
get_bool(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, int *out)
{
	struct pos at = node_pos(n, keypos);
	const char *s;
	size_t len;

	*out = 0;
	if ((s = scalar_text(c, n, at, what, &len)) == NULL)
		return -1;
	if (len == 4 && memcmp(s, "true", 4) == 0)
		*out = 1;
	else if (len == 5 && memcmp(s, "false", 5) == 0)
		*out = 0;
	else {
		problem(c, at, "%s must be true or false", what);
		return -1;
	}
	return 0;
}

static int
want_mapping(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what)
{
	if (n == NULL || !fy_node_is_mapping(n)) {
		problem(c, node_pos(n, keypos), "%s must be a mapping", what);
		return -1;
	}
	return 0;
}

static int
want_sequence(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what)
{
	if (n == NULL || !fy_node_is_sequence(n)) {
		problem(c, node_pos(n, keypos), "%s must be a list", what);
		return -1;
	}
	return 0;
}

/* One key of a mapping: its text (not NUL-terminated) and where it is. */
struct key {
	const char *s;
	size_t len;
	struct pos at;
};

static int
key_of(struct pctx *c, struct fy_node_pair *pair, struct pos fallback, struct key *k)
{
	struct fy_node *kn = fy_node_pair_key(pair);

	k->at = node_pos(kn, fallback);
	k->s = NULL;
	k->len = 0;
	if (kn == NULL || fy_node_get_type(kn) != FYNT_SCALAR ||
	    fy_node_get_style(kn) == FYNS_ALIAS ||
	    (k->s = fy_node_get_scalar(kn, &k->len)) == NULL) {
		problem(c, k->at, "a key must be a plain scalar");
		return -1;
	}
	return 0;
}

static int
key_is(const struct key *k, const char *name)
{
	return k->len == strlen(name) && memcmp(k->s, name, k->len) == 0;
}

/* For a first pass that looks for one key: bad keys are reported by the main pass. */
static int
pair_key_is(struct fy_node_pair *pair, const char *name)
{
	struct fy_node *kn = fy_node_pair_key(pair);
	const char *s;
	size_t len;

	if (kn == NULL || fy_node_get_type(kn) != FYNT_SCALAR ||
	    fy_node_get_style(kn) == FYNS_ALIAS || (s = fy_node_get_scalar(kn, &len)) == NULL)
		return 0;
	return len == strlen(name) && memcmp(s, name, len) == 0;
}

static void
unknown_key(struct pctx *c, const struct key *k, const char *where)
{
	char buf[POLICY_SHOW_MAX + 4];

	problem(c, k->at, "unknown key '%s' %s", show(k->s, k->len, buf), where);
}

static int
id_ok(const char *s, size_t max)
{
	size_t i, len = strlen(s);

	if (len == 0 || len > max)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

/* Column names become CSV headers and message text: keep them plain. */
static int
colname_ok(const char *s)
{
	size_t i, len = strlen(s);

	if (len == 0 || len > POLICY_COLNAME_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.'))
			return 0;
	return 1;
}

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
static size_t
items_alloc(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, size_t max, const char *too_many,
    size_t elem, void **out)
{
	size_t count;

	*out = NULL;
	if (want_sequence(c, n, keypos, what) != 0)
		return 0;
	count = (size_t)fy_node_sequence_item_count(n);
	if (count > max) {
		problem(c, keypos, "%s", too_many);
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
	if (items_alloc(c, n, keypos, "values", POLICY_VALUES_MAX, too_many, sizeof(*col->values), &arr) == 0)
		return;
	col->values = arr;
	while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
		char *v;

		if (get_str(c, item, keypos, "a category value", POLICY_VALUE_MAX, &v) != 0)
			continue;
		for (i = 0; i < col->nvalues; i++)
			if (strcmp(col->values[i], v) == 0)
				break;
		if (i < col->nvalues) {
			problem(c, node_pos(item, keypos), "duplicate category value in column '%s'",
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

	if (want_mapping(c, n, keypos, "map") != 0)
		return;
	count = (size_t)fy_node_mapping_item_count(n);
	if (count > POLICY_VALUES_MAX) {
		problem(c, keypos, "more than %d map entries", POLICY_VALUES_MAX);
		return;
	}
	if (count == 0) {
		problem(c, keypos, "map is empty");
		return;
	}
	if ((col->map = calloc(count, sizeof(*col->map))) == NULL) {
		c->nomem = 1;
		return;
	}
	/* libfyaml already rejects duplicate keys, so each `from` is unique. */
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct policy_map_entry *e = &col->map[col->nmap];
		struct pos at = node_pos(fy_node_pair_key(pair), keypos);

		if (get_str(c, fy_node_pair_key(pair), keypos, "a map key", POLICY_VALUE_MAX,
		    &e->from) != 0)
			continue;
		if (get_str(c, fy_node_pair_value(pair), at, "a map group", POLICY_VALUE_MAX,
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
			problem(c, node_pos(v, keypos), "band hierarchy needs 1 to %d widths", POLICY_BANDS_MAX);
			return;
		}
		while ((item = fy_node_sequence_iterate(v, &it)) != NULL) {
			if (get_int(c, item, keypos, "band", &b) != 0)
				return;
			if (b <= 0 || (col->nbands > 0 && b <= col->bands[col->nbands - 1])) {
				problem(c, node_pos(item, keypos), "band widths must be positive and increasing");
				return;
			}
			col->bands[col->nbands++] = b;
		}
	} else {
		if (get_int(c, v, keypos, "band", &b) != 0)
			return;
		if (b <= 0) {
			problem(c, node_pos(v, keypos), "band must be positive");
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
		problem(c, node_pos(v, keypos), "bounds must be a list [lo, hi]");
		return;
	}
	lo = fy_node_sequence_get_by_index(v, 0);
	hi = fy_node_sequence_get_by_index(v, 1);
	if (get_int(c, lo, keypos, "lower bound", &col->lo) != 0 || get_int(c, hi, keypos, "upper bound", &col->hi) != 0)
		return;
	if (col->lo > col->hi)
		problem(c, node_pos(v, keypos), "bounds: lo is greater than hi");
	else if (col->lo < -POLICY_BOUND_MAX || col->hi > POLICY_BOUND_MAX)
		problem(c, node_pos(v, keypos), "bounds must lie within +-%lld", (long long)POLICY_BOUND_MAX);
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

	if (want_mapping(c, n, keypos, "generalize") != 0)
		return;
	snprintf(where, sizeof(where), "in generalize of column '%s'",
	    col->name != NULL ? col->name : "?");
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *v = fy_node_pair_value(pair);

		if (key_of(c, pair, keypos, &k) != 0)
			continue;
		if (key_is(&k, "band")) {
			ck->seen_band = 1;
			ck->band = k.at;
			parse_bands(c, v, k.at, col);
		} else if (key_is(&k, "map")) {
			ck->seen_map = 1;
			ck->map = k.at;
			parse_map(c, v, k.at, col);
		} else if (key_is(&k, "other")) {
			ck->seen_other = 1;
			ck->other = k.at;
			(void)get_str(c, v, k.at, "other", POLICY_VALUE_MAX, &col->other);
		} else
			unknown_key(c, &k, where);
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
		if (!pair_key_is(pair, "name") || key_of(c, pair, at, &k) != 0)
			continue;
		ck->seen_name = 1;
		if (get_str(c, fy_node_pair_value(pair), k.at, "column name", POLICY_VALUE_MAX,
		    &col->name) != 0)
			return;
		if (!colname_ok(col->name)) {
			problem(c, node_pos(fy_node_pair_value(pair), k.at),
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
	ck.at = node_pos(n, fallback);
	col->line = (size_t)ck.at.line;
	if (want_mapping(c, n, fallback, "a column") != 0)
		return;
	column_name(c, n, ck.at, col, &ck);
	cn = col->name != NULL ? col->name : "?";
	snprintf(where, sizeof(where), "in column '%s'", cn);

	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *v = fy_node_pair_value(pair);

		if (key_of(c, pair, ck.at, &k) != 0)
			continue;
		if (key_is(&k, "name")) {
			continue;
		} else if (key_is(&k, "type")) {
			ck.seen_type = 1;
			ck.type = node_pos(v, k.at);
			if (get_str(c, v, k.at, "type", POLICY_VALUE_MAX, &s) != 0)
				continue;
			if (parse_type(s, &col->type) == 0)
				type_ok = 1;
			else
				problem(c, ck.type, "unknown type in column '%s' (want string, int, "
				    "category, purposes or timestamp)", cn);
			free(s);
		} else if (key_is(&k, "role")) {
			ck.seen_role = 1;
			ck.role = node_pos(v, k.at);
			if (get_str(c, v, k.at, "role", POLICY_VALUE_MAX, &s) != 0)
				continue;
			if (parse_role(s, &col->role) == 0)
				role_ok = 1;
			else
				problem(c, ck.role, "unknown role in column '%s' (want local_id, "
				    "identifier, consent, consent_time, feature or quasi_identifier)", cn);
			free(s);
		} else if (key_is(&k, "kind")) {
			ck.seen_kind = 1;
			ck.kind = node_pos(v, k.at);
			if (get_str(c, v, k.at, "kind", POLICY_VALUE_MAX, &s) != 0)
				continue;
			if (strcmp(s, "email") == 0)
				col->id_kind = TOKEN_KIND_EMAIL;
			else if (strcmp(s, "phone") == 0)
				col->id_kind = TOKEN_KIND_PHONE;
			else
				problem(c, ck.kind, "unknown kind in column '%s' (want email or phone)",
				    cn);
			free(s);
		} else if (key_is(&k, "required")) {
			ck.seen_required = 1;
			ck.required = k.at;
			(void)get_bool(c, v, k.at, "required", &col->required);
		} else if (key_is(&k, "min")) {
			ck.min = k.at;
			if (get_int(c, v, k.at, "min", &col->min) == 0)
				col->has_min = 1;
		} else if (key_is(&k, "max")) {
			ck.max = k.at;
			if (get_int(c, v, k.at, "max", &col->max) == 0)
				col->has_max = 1;
		} else if (key_is(&k, "values")) {
			ck.seen_values = 1;
			ck.values = k.at;
			parse_values(c, v, k.at, col);
		} else if (key_is(&k, "generalize")) {
			ck.seen_gen = 1;
			ck.gen = k.at;
			parse_generalize(c, v, k.at, col, &ck);
		} else if (key_is(&k, "public")) {
			ck.seen_public = 1;
			ck.pub = k.at;
			(void)get_bool(c, v, k.at, "public", &col->is_public);
		} else if (key_is(&k, "sensitive")) {
			ck.sens = k.at;
			(void)get_bool(c, v, k.at, "sensitive", &col->sensitive);
		} else if (key_is(&k, "bounds")) {
			ck.seen_bounds = 1;
			ck.bounds = k.at;
			parse_bounds(c, v, k.at, col);
		} else if (key_is(&k, "purposes")) {
			/* names only here: the policy's purposes may be written after the partners */
			struct fy_node *item;
			void *pit = NULL;
			col->has_purposes = 1;
			col->purposes_line = k.at.line;
			col->purposes_col = k.at.col;
			if (want_sequence(c, v, k.at, "column purposes") != 0)
				continue;
			if ((col->purpose_names = calloc((size_t)fy_node_sequence_item_count(v) + 1,
			    sizeof(char *))) == NULL) {
				c->nomem = 1;
				continue;
			}
			while ((item = fy_node_sequence_iterate(v, &pit)) != NULL) {
				if (get_str(c, item, k.at, "a column purpose", POLICY_VALUE_MAX,
				    &col->purpose_names[col->npurpose_names]) == 0)
					col->npurpose_names++;
			}
		} else
			unknown_key(c, &k, where);
	}

	if (!ck.seen_name)
		problem(c, ck.at, "column without a name");
	if (!ck.seen_type)
		problem(c, ck.at, "column '%s' has no type", cn);
	if (!ck.seen_role)
		problem(c, ck.at, "column '%s' has no role", cn);

	/* Defaults, then the combinations that only make sense together. */
	if (!ck.seen_required && role_ok)
		col->required = col->role != POLICY_ROLE_IDENTIFIER &&
		    col->role != POLICY_ROLE_LOCAL_ID;
	if (ck.seen_band && ck.seen_map)
		problem(c, ck.map, "generalize of column '%s' has both band and map", cn);
	else if (ck.seen_band)
		col->gen = POLICY_GEN_BAND;
	else if (ck.seen_map)
		col->gen = POLICY_GEN_MAP;
	if (ck.seen_map && !ck.seen_other)
		problem(c, ck.map, "map of column '%s' needs 'other'", cn);
	if (ck.seen_other && !ck.seen_map)
		problem(c, ck.other, "'other' of column '%s' needs a map", cn);
	if (ck.seen_gen && !ck.seen_band && !ck.seen_map)
		problem(c, ck.gen, "generalize of column '%s' needs band or map", cn);

	if (type_ok) {
		if ((col->has_min || col->has_max) && col->type != POLICY_TYPE_INT)
			problem(c, col->has_min ? ck.min : ck.max,
			    "min/max only apply to int columns ('%s')", cn);
		if (col->has_min && col->has_max && col->min > col->max)
			problem(c, ck.min, "min is greater than max in column '%s'", cn);
		if (col->type == POLICY_TYPE_CATEGORY && col->nvalues == 0 && !ck.seen_values)
			problem(c, ck.type, "category column '%s' needs values", cn);
		else if (col->type == POLICY_TYPE_CATEGORY && col->nvalues == 0)
			problem(c, ck.values, "category column '%s' needs values", cn);
		if (ck.seen_values && col->type != POLICY_TYPE_CATEGORY)
			problem(c, ck.values, "values only apply to category columns ('%s')", cn);
		if (ck.seen_band && col->type != POLICY_TYPE_INT)
			problem(c, ck.band, "band needs an int column ('%s')", cn);
		if (ck.seen_map && col->type == POLICY_TYPE_INT)
			problem(c, ck.map, "map on an int column ('%s'); use band", cn);
		else if (ck.seen_map && col->type != POLICY_TYPE_STRING &&
		    col->type != POLICY_TYPE_CATEGORY)
			problem(c, ck.map, "map needs a string or category column ('%s')", cn);
	}
	if (!role_ok)
		return;
	if (col->role == POLICY_ROLE_IDENTIFIER) {
		if (!ck.seen_kind)
			problem(c, ck.role, "identifier column '%s' needs a kind (email or phone)",
			    cn);
		if (ck.seen_required && col->required)
			problem(c, ck.required, "identifier column '%s' cannot be required: "
			    "identifiers are optional one by one", cn);
	} else if (ck.seen_kind)
		problem(c, ck.kind, "kind only applies to identifier columns ('%s')", cn);
	if ((col->role == POLICY_ROLE_CONSENT || col->role == POLICY_ROLE_CONSENT_TIME) &&
	    ck.seen_required && !col->required)
		problem(c, ck.required, "consent column '%s' cannot be optional", cn);
	if (col->role == POLICY_ROLE_QUASI && !ck.seen_gen)
		problem(c, ck.role, "quasi_identifier column '%s' needs generalize", cn);
	if (col->role != POLICY_ROLE_QUASI && ck.seen_gen)
		problem(c, ck.gen, "generalize only applies to quasi_identifier columns ('%s')",
		    cn);
	if (type_ok && ck.seen_bounds && col->type != POLICY_TYPE_INT)
		problem(c, ck.bounds, "bounds only apply to int columns ('%s')", cn);
	if ((col->is_public || col->sensitive || ck.seen_bounds) && col->role != POLICY_ROLE_FEATURE &&
	    col->role != POLICY_ROLE_QUASI)
		problem(c, col->is_public ? ck.pub : col->sensitive ? ck.sens : ck.bounds,
		    "public, sensitive and bounds only apply to feature and quasi_identifier columns ('%s')", cn);
	/* A public column's keys are enumerated from the policy: it needs a finite, declared domain. */
	if (type_ok && col->is_public && !(col->role == POLICY_ROLE_QUASI && col->gen == POLICY_GEN_MAP) &&
	    !(col->role == POLICY_ROLE_QUASI && col->gen == POLICY_GEN_BAND && col->band > 0 && col->has_min && col->has_max &&
	    ((__int128)col->max - col->min) / col->band < 4096) && col->type != POLICY_TYPE_CATEGORY)
		problem(c, ck.pub, "public column '%s' needs a declared domain: category values, a map, or a band "
		    "with min and max (at most 4096 bands)", cn);
	if (type_ok && col->sensitive && col->role != POLICY_ROLE_FEATURE)
		problem(c, ck.sens, "only a feature can be sensitive ('%s')", cn);
	if (!type_ok)
		return;
	switch (col->role) {
	case POLICY_ROLE_LOCAL_ID:
	case POLICY_ROLE_IDENTIFIER:
		if (col->type != POLICY_TYPE_STRING)
			problem(c, ck.type, "column '%s' must have type string for its role", cn);
		break;
	case POLICY_ROLE_CONSENT:
		if (col->type != POLICY_TYPE_PURPOSES)
			problem(c, ck.type, "consent column '%s' must have type purposes", cn);
		break;
	case POLICY_ROLE_CONSENT_TIME:
		if (col->type != POLICY_TYPE_TIMESTAMP)
			problem(c, ck.type, "consent_time column '%s' must have type timestamp",
			    cn);
		break;
	case POLICY_ROLE_FEATURE:
	case POLICY_ROLE_QUASI:
		if (col->type == POLICY_TYPE_PURPOSES)
			problem(c, ck.type, "type purposes is only for the consent column ('%s')",
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
	if (get_str(c, v, keypos, "signing_key", POLICY_VALUE_MAX, &pp->signing_key) != 0)
		return;
	if (keyfile_parse_public_line(pp->signing_key, strlen(pp->signing_key),
	    KEYFILE_ED25519_PUBLIC, &key, &kerr) != 0) {
		problem(c, node_pos(v, keypos), "bad signing_key of partner '%s': %s",
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
	if (items_alloc(c, n, keypos, "columns", POLICY_COLUMNS_MAX, too_many, sizeof(*pp->columns), &arr) == 0)
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
			problem(c, node_pos(item, keypos), "duplicate column '%s' in partner '%s'",
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

	at = node_pos(n, fallback);
	pp->line = (size_t)at.line;
	if (want_mapping(c, n, fallback, "a partner") != 0)
		return;
	/* The id first, so that every other message can name the partner. */
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		if (!pair_key_is(pair, "id") || key_of(c, pair, at, &k) != 0)
			continue;
		seen_id = 1;
		if (get_str(c, fy_node_pair_value(pair), k.at, "partner id", POLICY_VALUE_MAX,
		    &pp->id) != 0)
			break;
		if (!id_ok(pp->id, POLICY_ID_MAX)) {
			problem(c, node_pos(fy_node_pair_value(pair), k.at),
			    "bad partner id (want [a-z0-9_-]{1,%d})", POLICY_ID_MAX);
			free(pp->id);
			pp->id = NULL;
		}
		break;
	}
	if (!seen_id)
		problem(c, at, "partner without an id");
	snprintf(where, sizeof(where), "in partner '%s'", pp->id != NULL ? pp->id : "?");

	it = NULL;
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *v = fy_node_pair_value(pair);

		if (key_of(c, pair, at, &k) != 0)
			continue;
		if (key_is(&k, "id")) {
			continue;
		} else if (key_is(&k, "name")) {
			seen_name = 1;
			(void)get_str(c, v, k.at, "partner name", POLICY_NAME_MAX, &pp->name);
		} else if (key_is(&k, "signing_key")) {
			seen_key = 1;
			parse_signing_key(c, v, k.at, pp);
		} else if (key_is(&k, "columns")) {
			seen_cols = 1;
			columns = v;
			colpos = k.at;
		} else if (key_is(&k, "retention_days")) {
			int64_t days;
			if (get_int(c, v, k.at, "retention_days", &days) != 0)
				continue;
			if (days < 1 || days > POLICY_RETENTION_DAYS_MAX)
				problem(c, node_pos(v, k.at), "retention_days must be between 1 and %d",
				    POLICY_RETENTION_DAYS_MAX);
			else
				pp->retention_days = (uint32_t)days;
		} else
			unknown_key(c, &k, where);
	}
	pid = pp->id != NULL ? pp->id : "?";
	if (!seen_name)
		problem(c, at, "partner '%s' has no name", pid);
	if (!seen_key)
		problem(c, at, "partner '%s' has no signing_key", pid);
	if (!seen_cols) {
		problem(c, at, "partner '%s' has no columns", pid);
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
		problem(c, colpos, "partner '%s' has no identifier column", pid);
	if (nconsent != 1)
		problem(c, colpos, "partner '%s' needs exactly one consent column (found %zu)",
		    pid, nconsent);
	if (ntime != 1)
		problem(c, colpos, "partner '%s' needs exactly one consent_time column (found %zu)",
		    pid, ntime);
}

static void
parse_partners(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy *p)
{
	struct fy_node *item;
	void *it = NULL, *arr;
	char too_many[64];
	size_t j;

	snprintf(too_many, sizeof(too_many), "more than %d partners", POLICY_PARTNERS_MAX);
	if (items_alloc(c, n, keypos, "partners", POLICY_PARTNERS_MAX, too_many, sizeof(*p->partners), &arr) == 0) {
		if (n != NULL && fy_node_is_sequence(n) && fy_node_sequence_item_count(n) == 0)
			problem(c, keypos, "no partners");
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
			problem(c, node_pos(item, keypos), "duplicate partner id '%s'", pp->id);
		/* One key per partner: a shared key would let one sign as the other. */
		if (sodium_is_zero(pp->signing_pub, sizeof(pp->signing_pub)))
			continue;
		for (j = 0; j + 1 < p->npartners; j++)
			if (sodium_memcmp(p->partners[j].signing_pub, pp->signing_pub,
			    sizeof(pp->signing_pub)) == 0)
				break;
		if (j + 1 < p->npartners)
			problem(c, node_pos(item, keypos), "partner '%s' has the same signing_key "
			    "as partner '%s'", pp->id, p->partners[j].id != NULL ?
			    p->partners[j].id : "?");
	}
}

/* ---- network and principals ---- */

/* "HOST:PORT", HOST a name, an IPv4 address or a bracketed IPv6 address; PORT 0..65535. */
static int
listen_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	size_t hlen, i;
	long port = 0;

	if (colon == NULL || colon == s || colon[1] == '\0' || strlen(colon + 1) > 5)
		return 0;
	for (i = 1; colon[i] != '\0'; i++) {
		if (colon[i] < '0' || colon[i] > '9')
			return 0;
		port = port * 10 + (colon[i] - '0');
	}
	if (port > 65535)
		return 0;
	hlen = (size_t)(colon - s);
	if (s[0] == '[')
		return hlen > 2 && s[hlen - 1] == ']';
	for (i = 0; i < hlen; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-'))
			return 0;
	return 1;
}

static void
get_u32_range(struct pctx *c, struct fy_node *v, struct pos keypos, const char *what, uint64_t lo,
    uint64_t hi, uint64_t *out)
{
	int64_t i64;

	if (get_int(c, v, keypos, what, &i64) != 0)
		return;
	if (i64 < 0 || (uint64_t)i64 < lo || (uint64_t)i64 > hi)
		problem(c, node_pos(v, keypos), "%s must be between %" PRIu64 " and %" PRIu64, what, lo, hi);
	else
		*out = (uint64_t)i64;
}

/* max_startups: "START:RATE:FULL", OpenSSH's MaxStartups (gateway/admit.h). */
static void
parse_startups(struct pctx *c, struct fy_node *v, struct pos keypos, struct policy_network *net)
{
	char *s = NULL, tail;
	unsigned start, rate, full;

	if (get_str(c, v, keypos, "max_startups", 64, &s) != 0)
		return;
	if (sscanf(s, "%u:%u:%u%c", &start, &rate, &full, &tail) != 3 || full == 0 || start > full || rate > 100)
		problem(c, node_pos(v, keypos), "max_startups must be \"START:RATE:FULL\" with 0 < START <= FULL "
		    "and RATE <= 100 (a percentage)");
	else {
		net->startups_start = start;
		net->startups_rate = rate;
		net->startups_full = full;
	}
	free(s);
}

static void
parse_limits(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy_network *net)
{
	struct fy_node_pair *pair;
	void *it = NULL;
	struct key k;
	uint64_t v;

	if (want_mapping(c, n, keypos, "network limits") != 0)
		return;
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *val = fy_node_pair_value(pair);

		if (key_of(c, pair, keypos, &k) != 0)
			continue;
		v = 0;
		if (key_is(&k, "frame_max")) {
			get_u32_range(c, val, k.at, "frame_max", POLICY_NET_FRAME_MAX_MIN, 16u * 1024 * 1024, &v);
			if (v)
				net->frame_max = (uint32_t)v;
		} else if (key_is(&k, "preauth_frame_max")) {
			get_u32_range(c, val, k.at, "preauth_frame_max", POLICY_NET_PREAUTH_FRAME_MAX_MIN,
			    1024 * 1024, &v);
			if (v)
				net->preauth_frame_max = (uint32_t)v;
		} else if (key_is(&k, "push_max_bytes")) {
			get_u32_range(c, val, k.at, "push_max_bytes", 1024, UINT64_C(1) << 40, &v);
			if (v)
				net->push_max_bytes = v;
		} else if (key_is(&k, "max_connections")) {
			get_u32_range(c, val, k.at, "max_connections", 1, POLICY_NET_MAX_CONNECTIONS_MAX, &v);
			if (v)
				net->max_connections = (uint32_t)v;
		} else if (key_is(&k, "max_startups")) {
			parse_startups(c, val, k.at, net);
		} else if (key_is(&k, "per_source_max")) {
			get_u32_range(c, val, k.at, "per_source_max", 0, POLICY_NET_MAX_CONNECTIONS_MAX, &v);
			net->per_source_max = (uint32_t)v;
			net->per_source_set = 1;
		} else if (key_is(&k, "penalty_max")) {
			get_u32_range(c, val, k.at, "penalty_max", 0, 86400, &v);
			net->penalty_max = (uint32_t)v;
		} else if (key_is(&k, "handshake_timeout")) {
			get_u32_range(c, val, k.at, "handshake_timeout", 1, POLICY_NET_TIMEOUT_MAX, &v);
			if (v)
				net->handshake_timeout = (uint32_t)v;
		} else if (key_is(&k, "read_timeout")) {
			get_u32_range(c, val, k.at, "read_timeout", 1, POLICY_NET_TIMEOUT_MAX, &v);
			if (v)
				net->read_timeout = (uint32_t)v;
		} else if (key_is(&k, "idle_timeout")) {
			get_u32_range(c, val, k.at, "idle_timeout", 1, POLICY_NET_TIMEOUT_MAX, &v);
			if (v)
				net->idle_timeout = (uint32_t)v;
		} else
			unknown_key(c, &k, "in network limits");
	}
}

/* A relative CA path is relative to the policy file, so that a policy and its CA travel together. */
static char *
resolve_path(const char *policy_name, const char *p)
{
	const char *slash;
	char *out;
	size_t dlen;

	if (p[0] == '/' || (slash = strrchr(policy_name, '/')) == NULL)
		return strdup(p);
	dlen = (size_t)(slash - policy_name);
	if ((out = malloc(dlen + 1 + strlen(p) + 1)) == NULL)
		return NULL;
	memcpy(out, policy_name, dlen);
	out[dlen] = '/';
	strcpy(out + dlen + 1, p);
	return out;
}

static void
parse_network(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy *p)
{
	struct policy_network *net = &p->net;
	struct fy_node_pair *pair;
	void *it = NULL;
	int seen_ca = 0, seen_listen = 0;
	struct key k;
	uint64_t v;

	if (want_mapping(c, n, keypos, "network") != 0)
		return;
	net->present = 1;
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *val = fy_node_pair_value(pair);

		if (key_of(c, pair, keypos, &k) != 0)
			continue;
		if (key_is(&k, "ca")) {
			seen_ca = 1;
			if (get_str(c, val, k.at, "network ca", POLICY_VALUE_MAX, &net->ca) != 0)
				continue;
			if ((net->ca_path = resolve_path(c->name, net->ca)) == NULL)
				c->nomem = 1;
		} else if (key_is(&k, "listen")) {
			seen_listen = 1;
			if (get_str(c, val, k.at, "network listen", 300, &net->listen) != 0)
				continue;
			if (!listen_ok(net->listen)) {
				problem(c, node_pos(val, k.at), "network listen must be HOST:PORT with a port "
				    "from 0 to 65535 (an IPv6 address in brackets)");
				free(net->listen);
				net->listen = NULL;
			}
		} else if (key_is(&k, "limits")) {
			parse_limits(c, val, k.at, net);
		} else if (key_is(&k, "heartbeat_interval")) {
			v = 0;
			get_u32_range(c, val, k.at, "heartbeat_interval", 1, POLICY_NET_HEARTBEAT_MAX, &v);
			if (v)
				net->heartbeat_interval = (uint32_t)v;
		} else
			unknown_key(c, &k, "in network");
	}
	if (!seen_ca)
		problem(c, keypos, "network has no ca (the CA file that client certificates must chain to)");
	if (!seen_listen)
		problem(c, keypos, "network has no listen address");
	if (net->preauth_frame_max > net->frame_max)
		problem(c, keypos, "network limits: preauth_frame_max (%u) is larger than frame_max (%u)",
		    net->preauth_frame_max, net->frame_max);
	if (net->startups_full == 0) {       /* half the slots for handshakes, half kept for principals */
		net->startups_full = net->max_connections / 2 > 0 ? net->max_connections / 2 : 1;
		net->startups_start = net->startups_full / 2 > 0 ? net->startups_full / 2 : 1;
		net->startups_rate = 30;
	} else if (net->startups_full >= net->max_connections)
		problem(c, keypos, "network limits: max_startups full (%u) must be below max_connections (%u), "
		    "so that slots stay reserved for authenticated principals", net->startups_full, net->max_connections);
	if (!net->per_source_set)
		net->per_source_max = net->startups_full < POLICY_NET_PER_SOURCE_DEFAULT ? net->startups_full :
		    POLICY_NET_PER_SOURCE_DEFAULT;
}

/* Certificate identities: printable ASCII, as a SAN URI or a CN is matched byte for byte. */
static int
identity_ok(const char *s)
{
	size_t i, len = strlen(s);

	if (len == 0 || len > POLICY_IDENTITY_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

static void
parse_principal_purposes(struct pctx *c, struct fy_node *n, struct pos keypos, const struct policy *p,
    struct policy_principal *pr)
{
	struct fy_node *item;
	void *it = NULL;

	if (want_sequence(c, n, keypos, "principal purposes") != 0)
		return;
	while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
		struct pos at = node_pos(item, keypos);
		char *s;
		int bit;

		if (get_str(c, item, keypos, "a principal purpose", POLICY_VALUE_MAX, &s) != 0)
			continue;
		if ((bit = policy_purpose_bit(p, s)) < 0)
			problem(c, at, "principal '%s': purpose '%s' is not in the policy's purposes",
			    pr->name != NULL ? pr->name : "?", id_ok(s, POLICY_ID_MAX) ? s : "?");
		else if (strcmp(s, "match") == 0)
			/* match consent only lets a record be tokenized; exporting for it would bypass every other purpose */
			problem(c, at, "principal '%s': purpose 'match' cannot be granted (it only permits matching)",
			    pr->name != NULL ? pr->name : "?");
		else if (pr->purpose_bits & (UINT32_C(1) << bit))
			problem(c, at, "principal '%s': duplicate purpose '%s'", pr->name != NULL ? pr->name : "?", s);
		else
			pr->purpose_bits |= UINT32_C(1) << bit;
		free(s);
	}
	if (pr->purpose_bits == 0 && fy_node_sequence_item_count(n) == 0)
		problem(c, keypos, "principal '%s' has an empty purposes list", pr->name != NULL ? pr->name : "?");
}

static void
parse_principal(struct pctx *c, struct fy_node *n, struct pos fallback, const struct policy *p,
    struct policy_principal *pr)
{
	struct fy_node_pair *pair;
	struct fy_node *purposes = NULL, *rows = NULL;
	struct pos at, ppos = { 0, 0 }, partpos = { 0, 0 }, rpos = { 0, 0 }, bpos = { 0, 0 }, mpos = { 0, 0 };
	void *it = NULL;
	int seen_name = 0, seen_role = 0, seen_identity = 0;
	const char *name;
	char *role = NULL;
	struct key k;

	at = node_pos(n, fallback);
	pr->line = (size_t)at.line;
	if (want_mapping(c, n, fallback, "a principal") != 0)
		return;
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		if (!pair_key_is(pair, "name") || key_of(c, pair, at, &k) != 0)
			continue;
		seen_name = 1;
		if (get_str(c, fy_node_pair_value(pair), k.at, "principal name", POLICY_VALUE_MAX, &pr->name) != 0)
			break;
		if (!id_ok(pr->name, POLICY_ID_MAX)) {
			problem(c, node_pos(fy_node_pair_value(pair), k.at),
			    "bad principal name (want [a-z0-9_-]{1,%d})", POLICY_ID_MAX);
			free(pr->name);
			pr->name = NULL;
		}
		break;
	}
	if (!seen_name)
		problem(c, at, "principal without a name");
	name = pr->name != NULL ? pr->name : "?";
	it = NULL;
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *v = fy_node_pair_value(pair);

		if (key_of(c, pair, at, &k) != 0)
			continue;
		if (key_is(&k, "name"))
			continue;
		if (key_is(&k, "role")) {
			seen_role = 1;
			if (get_str(c, v, k.at, "principal role", POLICY_VALUE_MAX, &role) != 0)
				continue;
			if (strcmp(role, "partner") == 0)
				pr->role = POLICY_PRINCIPAL_PARTNER;
			else if (strcmp(role, "analyst") == 0)
				pr->role = POLICY_PRINCIPAL_ANALYST;
			else if (strcmp(role, "auditor") == 0)
				pr->role = POLICY_PRINCIPAL_AUDITOR;
			else
				problem(c, node_pos(v, k.at), "principal '%s': unknown role (want partner, analyst "
				    "or auditor)", name);
			free(role);
			role = NULL;
		} else if (key_is(&k, "identity")) {
			seen_identity = 1;
			if (get_str(c, v, k.at, "principal identity", POLICY_VALUE_MAX, &pr->identity) != 0)
				continue;
			if (!identity_ok(pr->identity)) {
				problem(c, node_pos(v, k.at), "principal '%s': identity must be 1 to %d printable "
				    "ASCII characters", name, POLICY_IDENTITY_MAX);
				free(pr->identity);
				pr->identity = NULL;
			}
		} else if (key_is(&k, "partner")) {
			partpos = node_pos(v, k.at);
			(void)get_str(c, v, k.at, "principal partner", POLICY_VALUE_MAX, &pr->partner);
		} else if (key_is(&k, "purposes")) {
			purposes = v;
			ppos = k.at;
		} else if (key_is(&k, "row_exports")) {
			rows = v;
			rpos = k.at;
		} else if (key_is(&k, "budget_rho")) {
			bpos = k.at;
			(void)get_nano(c, v, k.at, "budget_rho", &pr->budget_rho_nano);
		} else if (key_is(&k, "max_exports")) {
			uint64_t mx = 0;
			mpos = k.at;
			get_u32_range(c, v, k.at, "max_exports", 0, 1000000, &mx);
			pr->max_exports = (uint32_t)mx;
			pr->has_max_exports = 1;
		} else {
			char where[POLICY_ID_MAX + 32];

			snprintf(where, sizeof(where), "in principal '%s'", name);
			unknown_key(c, &k, where);
		}
	}
	if (!seen_role)
		problem(c, at, "principal '%s' has no role", name);
	if (!seen_identity)
		problem(c, at, "principal '%s' has no identity", name);
	if (pr->role == POLICY_PRINCIPAL_PARTNER) {
		if (pr->partner == NULL && partpos.line == 0)
			problem(c, at, "principal '%s' (role partner) has no partner", name);
		else if (pr->partner != NULL && policy_partner_find(p, pr->partner) == NULL)
			problem(c, partpos, "principal '%s': partner '%s' is not in the policy", name,
			    id_ok(pr->partner, POLICY_ID_MAX) ? pr->partner : "?");
	} else if (pr->partner != NULL || partpos.line != 0)
		problem(c, partpos, "principal '%s': only a principal of role partner has a partner", name);
	if (pr->role == POLICY_PRINCIPAL_ANALYST) {
		if (purposes == NULL)
			problem(c, at, "principal '%s' (role analyst) has no purposes", name);
		else
			parse_principal_purposes(c, purposes, ppos, p, pr);
	} else if (purposes != NULL)
		problem(c, ppos, "principal '%s': only a principal of role analyst has purposes", name);
	if (pr->role == POLICY_PRINCIPAL_ANALYST && rows != NULL) {
		struct policy_principal tmp = *pr;

		/* the same names and checks as purposes, and each must be one of them */
		tmp.purpose_bits = 0;
		parse_principal_purposes(c, rows, rpos, p, &tmp);
		pr->row_export_bits = tmp.purpose_bits;
		if (pr->row_export_bits & ~pr->purpose_bits)
			problem(c, rpos, "principal '%s': row_exports lists a purpose that is not in its purposes", name);
	} else if (rows != NULL)
		problem(c, rpos, "principal '%s': only a principal of role analyst has row_exports", name);
	if (pr->role != POLICY_PRINCIPAL_ANALYST && (bpos.line != 0 || mpos.line != 0))
		problem(c, bpos.line != 0 ? bpos : mpos, "principal '%s': only a principal of role analyst has "
		    "budget_rho or max_exports", name);
}

static void
parse_principals(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy *p)
{
	struct fy_node *item;
	void *it = NULL, *arr;
	char too_many[64];
	size_t j;

	snprintf(too_many, sizeof(too_many), "more than %d principals", POLICY_PRINCIPALS_MAX);
	if (items_alloc(c, n, keypos, "principals", POLICY_PRINCIPALS_MAX, too_many, sizeof(*p->principals), &arr) == 0)
		return;
	p->principals = arr;
	while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
		struct policy_principal *pr = &p->principals[p->nprincipals++];

		parse_principal(c, item, keypos, p, pr);
		for (j = 0; j + 1 < p->nprincipals; j++) {
			const struct policy_principal *o = &p->principals[j];

			if (pr->name != NULL && o->name != NULL && strcmp(o->name, pr->name) == 0)
				problem(c, node_pos(item, keypos), "duplicate principal name '%s'", pr->name);
			/* One identity, one principal: otherwise a certificate's rights would be ambiguous. */
			if (pr->identity != NULL && o->identity != NULL && strcmp(o->identity, pr->identity) == 0)
				problem(c, node_pos(item, keypos), "principal '%s' has the same identity as "
				    "principal '%s'", pr->name != NULL ? pr->name : "?",
				    o->name != NULL ? o->name : "?");
		}
	}
}

/* ---- top level ---- */

/* Whether two columns generalize alike: same kind, same bands, same map and `other`. */
static int
same_generalization(const struct policy_column *a, const struct policy_column *b)
{
	size_t i, j;

	if (a->type != b->type || a->gen != b->gen || a->is_public != b->is_public)
		return 0;
	if (a->gen == POLICY_GEN_BAND)
		return a->nbands == b->nbands && memcmp(a->bands, b->bands, a->nbands * sizeof(a->bands[0])) == 0 &&
		    (!a->is_public || (a->has_min == b->has_min && a->has_max == b->has_max && a->min == b->min &&
		    a->max == b->max));
	if (a->gen != POLICY_GEN_MAP)
		return 1;
	if (a->nmap != b->nmap || a->other == NULL || b->other == NULL || strcmp(a->other, b->other) != 0)
		return 0;
	for (i = 0; i < a->nmap; i++) {
		for (j = 0; j < b->nmap; j++)
			if (a->map[i].from != NULL && b->map[j].from != NULL && strcmp(a->map[i].from, b->map[j].from) == 0)
				break;
		if (j == b->nmap || a->map[i].to == NULL || b->map[j].to == NULL || strcmp(a->map[i].to, b->map[j].to) != 0)
			return 0;
	}
	return 1;
}

static void
output_name(char *out, size_t size, const char *pid, const struct policy_column *col)
{
	if (col->role == POLICY_ROLE_QUASI)
		snprintf(out, size, "%s", col->name);
	else
		snprintf(out, size, "%s_%s", pid != NULL ? pid : "?", col->name);
}

/*
 * Outputs name quasi-identifiers by name (one column, from whichever partner
 * has the value) and features as "<partner>_<column>": a quasi-identifier
 * two partners share must generalize alike, and no two output names may meet.
 */
static void
check_output_names(struct pctx *c, struct policy *p)
{
	size_t a, b, i, j;
	char na[POLICY_ID_MAX + POLICY_COLNAME_MAX + 2], nb[POLICY_ID_MAX + POLICY_COLNAME_MAX + 2];

	for (a = 0; a < p->npartners; a++) {
		for (i = 0; i < p->partners[a].ncolumns; i++) {
			const struct policy_column *x = &p->partners[a].columns[i];
			struct pos at = { (int)x->line, 1 };

			if (x->name == NULL || (x->role != POLICY_ROLE_QUASI && x->role != POLICY_ROLE_FEATURE))
				continue;
			for (b = a; b < p->npartners; b++) {
				for (j = b == a ? i + 1 : 0; j < p->partners[b].ncolumns; j++) {
					const struct policy_column *y = &p->partners[b].columns[j];

					if (y->name == NULL || (y->role != POLICY_ROLE_QUASI && y->role != POLICY_ROLE_FEATURE))
						continue;
					if (b != a && x->role == POLICY_ROLE_QUASI && y->role == POLICY_ROLE_QUASI &&
					    strcmp(x->name, y->name) == 0 && !same_generalization(x, y))
						problem(c, at, "quasi_identifier '%s' of partners '%s' and '%s' must have the same "
						    "type, generalization, public flag (and, public bands, min and max): exports "
						    "show it as one column", x->name, p->partners[a].id ? p->partners[a].id : "?",
						    p->partners[b].id ? p->partners[b].id : "?");
					output_name(na, sizeof(na), p->partners[a].id, x);
					output_name(nb, sizeof(nb), p->partners[b].id, y);
					if (strcmp(na, nb) == 0 && !(b != a && x->role == POLICY_ROLE_QUASI &&
					    y->role == POLICY_ROLE_QUASI))
						problem(c, at, "two columns would both be named '%s' in exports and queries", na);
				}
			}
		}
	}
}

/* Column purposes name the policy's purposes, which are known only after the whole file. */
static void
resolve_column_purposes(struct pctx *c, struct policy *p)
{
	size_t i, j, k;

	for (i = 0; i < p->npartners; i++) {
		for (j = 0; j < p->partners[i].ncolumns; j++) {
			struct policy_column *col = &p->partners[i].columns[j];
			struct pos at = { col->purposes_line, col->purposes_col };
			const char *cn = col->name != NULL ? col->name : "?";

			if (!col->has_purposes)
				continue;
			if (col->role != POLICY_ROLE_FEATURE && col->role != POLICY_ROLE_QUASI)
				problem(c, at, "purposes only apply to feature and quasi_identifier columns ('%s')",
				    cn);
			for (k = 0; k < col->npurpose_names; k++) {
				const char *name = col->purpose_names[k];
				int bit = policy_purpose_bit(p, name);
				if (bit < 0)
					problem(c, at, "column '%s': purpose '%s' is not in the policy's purposes", cn,
					    id_ok(name, POLICY_ID_MAX) ? name : "?");
				else if (strcmp(name, "match") == 0)
					problem(c, at, "column '%s': 'match' is not a purpose a column is shared for",
					    cn);
				else
					col->purposes |= UINT32_C(1) << bit;
			}
		}
	}
}

static void
parse_purposes(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy *p)
{
	struct fy_node *item;
	void *it = NULL;
	size_t j;
	int has_match = 0, has_analytics = 0;

	if (want_sequence(c, n, keypos, "purposes") != 0)
		return;
	if (fy_node_sequence_item_count(n) > POLICY_PURPOSES_MAX) {
		problem(c, keypos, "more than %d purposes", POLICY_PURPOSES_MAX);
		return;
	}
	while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
		struct pos at = node_pos(item, keypos);
		char *s;

		if (get_str(c, item, keypos, "a purpose", POLICY_VALUE_MAX, &s) != 0)
			continue;
		if (!id_ok(s, POLICY_ID_MAX)) {
			problem(c, at, "bad purpose name (want [a-z0-9_-]{1,%d})", POLICY_ID_MAX);
			free(s);
			continue;
		}
		for (j = 0; j < p->npurposes; j++)
			if (strcmp(p->purposes[j], s) == 0)
				break;
		if (j < p->npurposes) {
			problem(c, at, "duplicate purpose '%s'", s);
			free(s);
			continue;
		}
		has_match |= strcmp(s, "match") == 0;
		has_analytics |= strcmp(s, "analytics") == 0;
		p->purposes[p->npurposes++] = s;
	}
	if (!has_match)
		problem(c, keypos, "purposes must include 'match'");
	if (!has_analytics)
		problem(c, keypos, "purposes must include 'analytics'");
}

static void
parse_email(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy *p)
{
	struct fy_node_pair *pair;
	void *it = NULL;
	struct key k;

	if (want_mapping(c, n, keypos, "email") != 0)
		return;
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *v = fy_node_pair_value(pair);

		if (key_of(c, pair, keypos, &k) != 0)
			continue;
		if (key_is(&k, "gmail_dots"))
			(void)get_bool(c, v, k.at, "gmail_dots", &p->email.gmail_dots);
		else if (key_is(&k, "plus_tags"))
			(void)get_bool(c, v, k.at, "plus_tags", &p->email.plus_tags);
		else if (key_is(&k, "plus_tags_all"))
			(void)get_bool(c, v, k.at, "plus_tags_all", &p->email.plus_tags_all);
		else if (key_is(&k, "googlemail"))
			(void)get_bool(c, v, k.at, "googlemail", &p->email.googlemail);
		else
			unknown_key(c, &k, "in email");
	}
}

/* ---- privacy ---- */

int
policy_parse_nano(const char *s, size_t len, int64_t max, int64_t *out)
{
	int64_t whole = 0, frac = 0;
	size_t i = 0, nfrac = 0;
	int digits = 0;

	*out = 0;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
		if (whole > max / BILLION)
			return CG_ERR_LIMIT;
		whole = whole * 10 + (s[i] - '0');
	}
	if (i < len && s[i] == '.') {
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, nfrac++, digits++) {
			if (nfrac == 9)
				return CG_ERR_FORMAT;   /* finer than 1e-9: not representable exactly */
			frac = frac * 10 + (s[i] - '0');
		}
		if (nfrac == 0)
			return CG_ERR_FORMAT;
	}
	if (i != len || digits == 0)
		return CG_ERR_FORMAT;
	for (; nfrac < 9; nfrac++)
		frac *= 10;
	if (whole > max / BILLION || whole * BILLION > max - frac)
		return CG_ERR_LIMIT;
	*out = whole * BILLION + frac;
	return *out > 0 ? 0 : CG_ERR_LIMIT;
}

static int
get_nano(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, int64_t *out)
{
	return get_number(c, n, keypos, what, 1, out);
}

/* A probability written as a decimal or in e-notation, 0 < x < 1 (or <= 1 with `one`). */
static int
get_prob(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, int one, double *out)
{
	struct pos at = node_pos(n, keypos);
	char buf[64], *end;
	const char *s;
	size_t len;
	double d;

	if ((s = scalar_text(c, n, at, what, &len)) == NULL)
		return -1;
	if (len == 0 || len >= sizeof(buf) || s[0] == '-' || s[0] == '+' || s[0] == ' ')
		goto bad;
	memcpy(buf, s, len);
	buf[len] = '\0';
	errno = 0;
	d = strtod(buf, &end);
	if (errno != 0 || *end != '\0' || !(d > 0 && (d < 1 || (one && d == 1))))
		goto bad;
	*out = d;
	return 0;
bad:
	problem(c, at, "%s must be a number above 0 and below %s", what, one ? "or equal to 1" : "1");
	return -1;
}

static void
parse_privacy(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy *p)
{
	struct policy_privacy *pv = &p->privacy;
	struct fy_node_pair *pair;
	void *it = NULL;
	struct key k;
	uint64_t v;
	double d;

	int64_t nano;

	if (want_mapping(c, n, keypos, "privacy") != 0)
		return;
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *val = fy_node_pair_value(pair);

		if (key_of(c, pair, keypos, &k) != 0)
			continue;
		v = 0;
		if (key_is(&k, "threshold")) {
			get_u32_range(c, val, k.at, "threshold", 1, 1000000, &v);
			if (v)
				pv->threshold = (uint32_t)v;
		} else if (key_is(&k, "query_rho")) {
			if (get_nano(c, val, k.at, "query_rho", &nano) == 0)
				pv->query_rho_nano = nano;
		} else if (key_is(&k, "export_rho")) {
			if (get_nano(c, val, k.at, "export_rho", &nano) == 0)
				pv->export_rho_nano = nano;
		} else if (key_is(&k, "budget_rho")) {
			if (get_nano(c, val, k.at, "budget_rho", &nano) == 0)
				pv->budget_rho_nano = nano;
		} else if (key_is(&k, "partition_delta")) {
			if (get_prob(c, val, k.at, "partition_delta", 0, &d) == 0)
				pv->partition_delta = d;
		} else if (key_is(&k, "l")) {
			get_u32_range(c, val, k.at, "l", 1, 1000, &v);
			if (v)
				pv->l = (uint32_t)v;
		} else if (key_is(&k, "suppression_limit")) {
			if (get_prob(c, val, k.at, "suppression_limit", 1, &d) == 0)
				pv->suppression_ppm = (uint32_t)(d * 1e6);   /* truncation: never more lenient */
		} else if (key_is(&k, "max_exports")) {
			get_u32_range(c, val, k.at, "max_exports", 0, 1000000, &v);
			pv->max_exports = (uint32_t)v;
		} else
			unknown_key(c, &k, "in privacy");
	}
	if (pv->query_rho_nano > pv->budget_rho_nano)
		problem(c, keypos, "privacy: query_rho is larger than budget_rho");
	if (pv->export_rho_nano > pv->budget_rho_nano)
		problem(c, keypos, "privacy: export_rho is larger than budget_rho");
}

static void
parse_root(struct pctx *c, struct fy_node *root, struct policy *p)
{
	struct pos start = { 1, 1 }, at;
	struct fy_node_pair *pair;
	void *it = NULL;
	int seen_version = 0, seen_name = 0, seen_country = 0, seen_purposes = 0;
	int seen_partners = 0;
	struct fy_node *principals = NULL;
	struct pos prpos = { 0, 0 };
	struct key k;

	at = node_pos(root, start);
	if (root == NULL || !fy_node_is_mapping(root)) {
		problem(c, at, "the policy must be a mapping");
		return;
	}
	while ((pair = fy_node_mapping_iterate(root, &it)) != NULL) {
		struct fy_node *v = fy_node_pair_value(pair);
		int64_t i64;
		char *s;

		if (key_of(c, pair, at, &k) != 0)
			continue;
		if (key_is(&k, "version")) {
			seen_version = 1;
			if (get_int(c, v, k.at, "version", &i64) != 0)
				continue;
			if (i64 != 1)
				problem(c, node_pos(v, k.at), "unsupported version (want 1)");
			else
				p->version = 1;
		} else if (key_is(&k, "name")) {
			seen_name = 1;
			(void)get_str(c, v, k.at, "name", POLICY_NAME_MAX, &p->name);
		} else if (key_is(&k, "k")) {
			if (get_int(c, v, k.at, "k", &i64) != 0)
				continue;
			if (i64 < 2 || i64 > POLICY_K_MAX)
				problem(c, node_pos(v, k.at), "k must be between 2 and %d",
				    POLICY_K_MAX);
			else
				p->k = (uint32_t)i64;
		} else if (key_is(&k, "default_phone_country")) {
			seen_country = 1;
			if (get_str(c, v, k.at, "default_phone_country", POLICY_VALUE_MAX, &s) != 0)
				continue;
			if (strlen(s) != 2 || normalize_country_code(s) == NULL)
				problem(c, node_pos(v, k.at), "unknown default_phone_country "
				    "(want an ISO 3166-1 alpha-2 code such as CN)");
			else
				memcpy(p->default_country, s, 3);
			free(s);
		} else if (key_is(&k, "email")) {
			parse_email(c, v, k.at, p);
		} else if (key_is(&k, "purposes")) {
			seen_purposes = 1;
			parse_purposes(c, v, k.at, p);
		} else if (key_is(&k, "partners")) {
			seen_partners = 1;
			parse_partners(c, v, k.at, p);
		} else if (key_is(&k, "network")) {
			parse_network(c, v, k.at, p);
		} else if (key_is(&k, "privacy")) {
			parse_privacy(c, v, k.at, p);
		} else if (key_is(&k, "principals")) {
			/* after the loop: they name partners and purposes, wherever those are written */
			principals = v;
			prpos = k.at;
		} else
			unknown_key(c, &k, "at the top level");
	}
	if (principals != NULL)
		parse_principals(c, principals, prpos, p);
	resolve_column_purposes(c, p);
	check_output_names(c, p);
	if (!seen_version)
		problem(c, at, "missing 'version'");
	if (!seen_name)
		problem(c, at, "missing 'name'");
	if (!seen_country)
		problem(c, at, "missing 'default_phone_country'");
	if (!seen_purposes)
		problem(c, at, "missing 'purposes'");
	if (!seen_partners)
		problem(c, at, "missing 'partners'");
}

/*
 * YAML is Unicode text.  Checking it here also keeps libfyaml 0.7.12 away from
 * truncated UTF-8 sequences, on which its scanner never returns (e.g. "%\xf2").
 */
static int
check_text(struct pctx *c, const char *buf, size_t len)
{
	const unsigned char *b = (const unsigned char *)buf;
	struct pos at = { 1, 1 };
	size_t i = 0, n;
	uint32_t cp;

	while (i < len) {
		unsigned char ch = b[i];

		if (ch < 0x80) {
			if ((ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') || ch == 0x7f) {
				problem(c, at, "control character in the policy file");
				return -1;
			}
			if (ch == '\n') {
				at.line++;
				at.col = 1;
			} else
				at.col++;
			i++;
			continue;
		}
		if ((n = utf8_decode(b + i, len - i, &cp)) == 0)
			goto bad;
		i += n;
		at.col++;
	}
	return 0;
bad:
	problem(c, at, "the policy file is not valid UTF-8");
	return -1;
}

static void
diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
	(void)diag;
	(void)user;
	(void)buf;
	(void)len;
}

/* libfyaml's collected errors are already 1-based. */
static void
collect_yaml_errors(struct pctx *c, struct fy_diag *diag)
{
	struct fy_diag_error *e;
	void *it = NULL;
	size_t before = c->n;

	while ((e = fy_diag_errors_iterate(diag, &it)) != NULL) {
		struct pos at = { e->line > 0 ? e->line : 1, e->column > 0 ? e->column : 1 };

		if (e->type < FYET_ERROR)
			continue;
		problem(c, at, "YAML: %s", e->msg != NULL ? e->msg : "syntax error");
	}
	if (c->n == before) {
		struct pos at = { 1, 1 };

		problem(c, at, "YAML: not a valid document");
	}
}

static void
parse_yaml(struct pctx *c, const char *buf, size_t len, struct policy *p)
{
	struct fy_diag_cfg dcfg;
	struct fy_parse_cfg pcfg;
	struct fy_diag *diag = NULL;
	struct fy_parser *fyp = NULL;
	struct fy_document *doc = NULL, *extra = NULL;
	struct pos start = { 1, 1 };

	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.output_fn = diag_discard;
	dcfg.colorize = false;
	if ((diag = fy_diag_create(&dcfg)) == NULL) {
		c->nomem = 1;
		goto out;
	}
	fy_diag_set_collect_errors(diag, true);
	memset(&pcfg, 0, sizeof(pcfg));
	/* No document resolution: aliases stay aliases and are rejected, never expanded. */
	pcfg.flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_2 | FYPCF_JSON_NONE;
	pcfg.diag = diag;
	if ((fyp = fy_parser_create(&pcfg)) == NULL) {
		c->nomem = 1;
		goto out;
	}
	if (check_text(c, buf, len) != 0)
		goto out;
	if (len == 0 || fy_parser_set_string(fyp, buf, len) != 0) {
		problem(c, start, "empty policy");
		goto out;
	}
	if ((doc = fy_parse_load_document(fyp)) == NULL) {
		if (fy_diag_got_error(diag))
			collect_yaml_errors(c, diag);
		else
			problem(c, start, "empty policy");
		goto out;
	}
	if ((extra = fy_parse_load_document(fyp)) != NULL) {
		problem(c, node_pos(fy_document_root(extra), start),
		    "more than one YAML document");
		goto out;
	}
	if (fy_diag_got_error(diag)) {
		collect_yaml_errors(c, diag);
		goto out;
	}
	parse_root(c, fy_document_root(doc), p);
out:
	if (extra != NULL)
		fy_parse_document_destroy(fyp, extra);
	if (doc != NULL)
		fy_parse_document_destroy(fyp, doc);
	if (fyp != NULL)
		fy_parser_destroy(fyp);
	if (diag != NULL)
		fy_diag_destroy(diag);
}

int
policy_parse(const char *name, const char *buf, size_t len, struct policy **out,
    struct policy_problems *problems, struct cg_err *err)
{
	struct pctx c;
	struct policy *p = NULL;
	size_t i;
	int r = CG_ERR_INTERNAL;

	*out = NULL;
	memset(&c, 0, sizeof(c));
	c.name = name;
	if (buf == NULL && len != 0) {
		r = cg_err_set(err, CG_ERR_ARG, "%s: no buffer", name);
		goto out;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL || (p->path = strdup(name)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "%s: out of memory", name);
		goto out;
	}
	p->k = POLICY_DEFAULT_K;
	p->email.gmail_dots = 1;
	p->email.plus_tags = 1;
	p->email.plus_tags_all = 0;
	p->email.googlemail = 1;
	p->net.frame_max = POLICY_NET_FRAME_MAX_DEFAULT;
	p->net.preauth_frame_max = POLICY_NET_PREAUTH_FRAME_MAX_DEFAULT;
	p->net.push_max_bytes = POLICY_NET_PUSH_MAX_DEFAULT;
	p->net.max_connections = POLICY_NET_MAX_CONNECTIONS_DEFAULT;
	p->net.handshake_timeout = POLICY_NET_HANDSHAKE_TIMEOUT_DEFAULT;
	p->net.penalty_max = POLICY_NET_PENALTY_MAX_DEFAULT;
	p->net.read_timeout = POLICY_NET_READ_TIMEOUT_DEFAULT;
	p->net.idle_timeout = POLICY_NET_IDLE_TIMEOUT_DEFAULT;
	p->net.heartbeat_interval = POLICY_NET_HEARTBEAT_DEFAULT;
	p->privacy.threshold = POLICY_THRESHOLD_DEFAULT;
	p->privacy.query_rho_nano = POLICY_QUERY_RHO_DEFAULT;
	p->privacy.export_rho_nano = POLICY_EXPORT_RHO_DEFAULT;
	p->privacy.budget_rho_nano = POLICY_BUDGET_RHO_DEFAULT;
	p->privacy.partition_delta = POLICY_PARTITION_DELTA_DEFAULT;
	p->privacy.l = POLICY_L_DEFAULT;
	p->privacy.suppression_ppm = POLICY_SUPPRESSION_PPM_DEFAULT;
	p->privacy.max_exports = POLICY_MAX_EXPORTS_DEFAULT;
	if (len > POLICY_FILE_MAX) {
		struct pos none = { 0, 0 };

		problem(&c, none, "policy file is larger than %d bytes", POLICY_FILE_MAX);
	} else {
		crypto_hash_sha256(p->hash, (const unsigned char *)buf, len);
		parse_yaml(&c, buf, len, p);
	}
	if (c.nomem) {
		r = cg_err_set(err, CG_ERR_NOMEM, "%s: out of memory", name);
		goto out;
	}
	if (c.n > 0) {
		pctx_sort(&c);
		r = cg_err_set(err, CG_ERR_POLICY, "%s", c.msgs[0]);
		if (problems != NULL) {
			char **nm = realloc(problems->msgs, (problems->n + c.n) * sizeof(*nm));

			if (nm == NULL) {
				r = cg_err_set(err, CG_ERR_NOMEM, "%s: out of memory", name);
				goto out;
			}
			problems->msgs = nm;
			for (i = 0; i < c.n; i++) {
				problems->msgs[problems->n++] = c.msgs[i];
				c.msgs[i] = NULL;    /* transferred */
			}
		}
		goto out;
	}
	*out = p;
	p = NULL;    /* transferred */
	r = 0;
out:
	for (i = 0; i < c.n; i++)
		free(c.msgs[i]);
	free(c.msgs);
	free(c.at);
	policy_free(p);
	return r;
}

int
policy_load(const char *path, struct policy **out, struct policy_problems *problems,
    struct cg_err *err)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t got;
	int fd = -1, r = CG_ERR_INTERNAL;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		r = cg_err_set(err, CG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		r = cg_err_set(err, CG_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = cg_err_set(err, CG_ERR_IO, "%s: not a regular file", path);
		goto out;
	}
	/* One byte more than allowed, so that an oversized file is seen even if it grows. */
	if ((buf = malloc(POLICY_FILE_MAX + 1)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "%s: out of memory", path);
		goto out;
	}
	while (len < POLICY_FILE_MAX + 1) {
		got = read(fd, buf + len, POLICY_FILE_MAX + 1 - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = cg_err_set(err, CG_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	r = policy_parse(path, buf, len, out, problems, err);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

static void
column_free(struct policy_column *col)
{
	size_t i;

	free(col->name);
	for (i = 0; i < col->nvalues; i++)
		free(col->values[i]);
	free(col->values);
	for (i = 0; i < col->nmap; i++) {
		free(col->map[i].from);
		free(col->map[i].to);
	}
	free(col->map);
	free(col->other);
	for (size_t pi = 0; pi < col->npurpose_names; pi++)
		free(col->purpose_names[pi]);
	free(col->purpose_names);
}

void
policy_free(struct policy *p)
{
	size_t i, j;

	if (p == NULL)
		return;
	for (i = 0; i < p->npartners; i++) {
		struct policy_partner *pp = &p->partners[i];

		for (j = 0; j < pp->ncolumns; j++)
			column_free(&pp->columns[j]);
		free(pp->columns);
		free(pp->id);
		free(pp->name);
		free(pp->signing_key);
	}
	free(p->partners);
	for (i = 0; i < p->nprincipals; i++) {
		free(p->principals[i].name);
		free(p->principals[i].identity);
		free(p->principals[i].partner);
	}
	free(p->principals);
	free(p->net.ca);
	free(p->net.ca_path);
	free(p->net.listen);
	for (i = 0; i < p->npurposes; i++)
		free(p->purposes[i]);
	free(p->name);
	free(p->path);
	free(p);
}

void
policy_problems_free(struct policy_problems *pr)
{
	size_t i;

	if (pr == NULL)
		return;
	for (i = 0; i < pr->n; i++)
		free(pr->msgs[i]);
	free(pr->msgs);
	pr->msgs = NULL;
	pr->n = 0;
}

const struct policy_partner *
policy_partner_find(const struct policy *p, const char *id)
{
	size_t i;

	if (p == NULL || id == NULL)
		return NULL;
	for (i = 0; i < p->npartners; i++)
		if (p->partners[i].id != NULL && strcmp(p->partners[i].id, id) == 0)
			return &p->partners[i];
	return NULL;
}

const struct policy_column *
policy_column_find(const struct policy_partner *pp, const char *name)
{
	size_t i;

	if (pp == NULL || name == NULL)
		return NULL;
	for (i = 0; i < pp->ncolumns; i++)
		if (pp->columns[i].name != NULL && strcmp(pp->columns[i].name, name) == 0)
			return &pp->columns[i];
	return NULL;
}

int
policy_purpose_bit(const struct policy *p, const char *purpose)
{
	size_t i;

	if (p == NULL || purpose == NULL)
		return -1;
	for (i = 0; i < p->npurposes; i++)
		if (strcmp(p->purposes[i], purpose) == 0)
			return (int)i;
	return -1;
}

const struct policy_principal *
policy_principal_find(const struct policy *p, const char *identity)
{
	size_t i;

	if (p == NULL || identity == NULL)
		return NULL;
	for (i = 0; i < p->nprincipals; i++)
		if (p->principals[i].identity != NULL && strcmp(p->principals[i].identity, identity) == 0)
			return &p->principals[i];
	return NULL;
}

const char *
policy_role_name(enum policy_principal_role role)
{
	switch (role) {
	case POLICY_PRINCIPAL_PARTNER: return "partner";
	case POLICY_PRINCIPAL_ANALYST: return "analyst";
	case POLICY_PRINCIPAL_AUDITOR: return "auditor";
	}
	return "none";
}

int
policy_principal_may_export(const struct policy *p, const struct policy_principal *pr, const char *purpose)
{
	int bit;

	if (p == NULL || pr == NULL || purpose == NULL || pr->role != POLICY_PRINCIPAL_ANALYST)
		return 0;
	if ((bit = policy_purpose_bit(p, purpose)) < 0 || strcmp(purpose, "match") == 0)
		return 0;
	return (pr->purpose_bits & (UINT32_C(1) << bit)) != 0;
}

int
policy_principal_may_row_export(const struct policy *p, const struct policy_principal *pr, const char *purpose)
{
	int bit;

	if (!policy_principal_may_export(p, pr, purpose) || (bit = policy_purpose_bit(p, purpose)) < 0)
		return 0;
	return (pr->row_export_bits & (UINT32_C(1) << bit)) != 0;
}

int64_t
policy_principal_budget(const struct policy *p, const struct policy_principal *pr)
{
	return pr != NULL && pr->budget_rho_nano > 0 ? pr->budget_rho_nano : p->privacy.budget_rho_nano;
}

uint32_t
policy_principal_max_exports(const struct policy *p, const struct policy_principal *pr)
{
	return pr != NULL && pr->has_max_exports ? pr->max_exports : p->privacy.max_exports;
}

const struct policy_principal *
policy_principal_by_name(const struct policy *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->nprincipals; i++)
		if (p->principals[i].name != NULL && strcmp(p->principals[i].name, name) == 0)
			return &p->principals[i];
	return NULL;
}

/* ---- cells ---- */

static int
purpose_bit_n(const struct policy *p, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < p->npurposes; i++)
		if (strlen(p->purposes[i]) == len && memcmp(p->purposes[i], s, len) == 0)
			return (int)i;
	return -1;
}

static int
parse_purpose_list(const struct policy *p, const char *cell, size_t len, uint32_t *bits,
    struct cg_err *err)
{
	size_t start = 0, end, a, b;
	uint32_t acc = 0;
	int bit;

	*bits = 0;
	for (a = 0; a < len && (cell[a] == ' ' || cell[a] == '\t'); a++)
		;
	if (a == len)
		return 0;    /* blank: consent to nothing */
	while (start <= len) {
		const char *semi = memchr(cell + start, ';', len - start);

		end = semi != NULL ? (size_t)(semi - cell) : len;
		for (a = start; a < end && (cell[a] == ' ' || cell[a] == '\t'); a++)
			;
		for (b = end; b > a && (cell[b - 1] == ' ' || cell[b - 1] == '\t'); b--)
			;
		if (a == b)
			return cg_err_set(err, CG_ERR_FORMAT, "empty purpose in list");
		if ((bit = purpose_bit_n(p, cell + a, b - a)) < 0)
			return cg_err_set(err, CG_ERR_FORMAT, "unknown purpose");
		acc |= (uint32_t)1 << bit;
		if (semi == NULL)
			break;
		start = end + 1;
	}
	*bits = acc;
	return 0;
}

int
policy_value_parse(const struct policy *p, const struct policy_column *c, const char *cell,
    size_t len, struct policy_value *out, struct cg_err *err)
{
	size_t i;
	int r;

	memset(out, 0, sizeof(*out));
	if (len > POLICY_VALUE_MAX)
		return cg_err_set(err, CG_ERR_FORMAT, "longer than %d bytes", POLICY_VALUE_MAX);
	if (len == 0 && c->type != POLICY_TYPE_PURPOSES) {
		if (c->required)
			return cg_err_set(err, CG_ERR_FORMAT, "required");
		out->is_null = 1;
		return 0;
	}
	switch (c->type) {
	case POLICY_TYPE_STRING:
		if (memchr(cell, '\0', len) != NULL)
			return cg_err_set(err, CG_ERR_FORMAT, "contains a NUL byte");
		break;
	case POLICY_TYPE_INT:
		if ((r = parse_i64(cell, len, &out->i)) == CG_ERR_LIMIT)
			return cg_err_set(err, CG_ERR_FORMAT, "integer out of range");
		if (r != 0)
			return cg_err_set(err, CG_ERR_FORMAT, "not an integer");
		if (c->has_min && out->i < c->min) {
			out->i = 0;
			return cg_err_set(err, CG_ERR_FORMAT, "below min %" PRId64, c->min);
		}
		if (c->has_max && out->i > c->max) {
			out->i = 0;
			return cg_err_set(err, CG_ERR_FORMAT, "above max %" PRId64, c->max);
		}
		return 0;
	case POLICY_TYPE_CATEGORY:
		for (i = 0; i < c->nvalues; i++)
			if (strlen(c->values[i]) == len && memcmp(c->values[i], cell, len) == 0)
				break;
		if (i == c->nvalues)
			return cg_err_set(err, CG_ERR_FORMAT, "not one of the category's values");
		break;
	case POLICY_TYPE_PURPOSES:
		return parse_purpose_list(p, cell, len, &out->bits, err);
	case POLICY_TYPE_TIMESTAMP:
		return policy_parse_time(cell, len, &out->i, err);
	default:
		return cg_err_set(err, CG_ERR_INTERNAL, "column has no type");
	}
	out->s = cell;
	out->slen = len;
	return 0;
}

/* ---- time ---- */

static int
digits(const char *s, size_t n)
{
	int v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static int
leap_year(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* H. Hinnant, "chrono-Compatible Low-Level Date Algorithms": days_from_civil. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int
policy_parse_time(const char *s, size_t len, int64_t *out, struct cg_err *err)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0, dim;
	size_t i;

	*out = 0;
	if (len < 10 || s[4] != '-' || s[7] != '-' || (y = digits(s, 4)) < 0 ||
	    (mo = digits(s + 5, 2)) < 0 || (d = digits(s + 8, 2)) < 0)
		goto bad;
	if (mo < 1 || mo > 12)
		return cg_err_set(err, CG_ERR_FORMAT, "timestamp month out of range");
	dim = mdays[mo - 1] + (mo == 2 && leap_year(y));
	if (d < 1 || d > dim)
		return cg_err_set(err, CG_ERR_FORMAT, "timestamp day out of range");
	i = 10;
	if (i < len) {
		if (len < 19 || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':' ||
		    (h = digits(s + 11, 2)) < 0 || (mi = digits(s + 14, 2)) < 0 ||
		    (sec = digits(s + 17, 2)) < 0)
			goto bad;
		if (h > 23 || mi > 59 || sec > 59)
			return cg_err_set(err, CG_ERR_FORMAT, "timestamp time of day out of range");
		i = 19;
		if (i < len && s[i] == '.') {
			size_t f = ++i;

			while (i < len && s[i] >= '0' && s[i] <= '9')
				i++;
			if (i == f || i - f > 9)
				goto bad;
		}
		if (i < len && s[i] == 'Z') {
			i++;
		} else if (i < len && (s[i] == '+' || s[i] == '-')) {
			sign = s[i] == '+' ? 1 : -1;
			if (len - i < 6 || s[i + 3] != ':' || (oh = digits(s + i + 1, 2)) < 0 ||
			    (om = digits(s + i + 4, 2)) < 0)
				goto bad;
			if (oh > 23 || om > 59)
				return cg_err_set(err, CG_ERR_FORMAT, "timestamp offset out of range");
			i += 6;
		}
		if (i != len)
			goto bad;
	}
	/* Local time = UTC + offset, so UTC = local - offset. */
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
	    (int64_t)sign * (oh * 3600 + om * 60);
	return 0;
bad:
	return cg_err_set(err, CG_ERR_FORMAT, "not an ISO 8601 timestamp "
	    "(YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM])");
}

/* ---- generalization ---- */

int
policy_generalize_int(const struct policy_column *c, int64_t v, char *out, size_t out_size)
{
	if (out_size > 0)
		out[0] = '\0';
	if (c->gen != POLICY_GEN_BAND || c->band <= 0)
		return CG_ERR_ARG;
	return policy_generalize_band(c->band, v, out, out_size);
}

int
policy_generalize_band(int64_t band, int64_t v, char *out, size_t out_size)
{
	int64_t q, lo, hi;
	int n;

	if (out_size > 0)
		out[0] = '\0';
	if (band <= 0)
		return CG_ERR_ARG;
	/* Floor division, so that -1 with band 10 is in -10..-1, not 0..9. */
	q = v / band;
	if (v % band != 0 && v < 0)
		q--;
	/* At the ends of the int64 range the band is cut to what int64 can hold. */
	if (__builtin_mul_overflow(q, band, &lo))
		lo = INT64_MIN;
	if (__builtin_mul_overflow(q + 1, band, &hi))
		hi = INT64_MAX;
	else
		hi--;
	n = snprintf(out, out_size, "%" PRId64 "-%" PRId64, lo, hi);
	if (n < 0 || (size_t)n >= out_size) {
		if (out_size > 0)
			out[0] = '\0';
		return CG_ERR_LIMIT;
	}
	return 0;
}

int
policy_generalize_str(const struct policy_column *c, const char *v, size_t len, char *out,
    size_t out_size)
{
	const char *g;
	size_t i, glen;

	if (out_size > 0)
		out[0] = '\0';
	if (c->gen != POLICY_GEN_MAP || c->other == NULL)
		return CG_ERR_ARG;
	g = c->other;
	for (i = 0; i < c->nmap; i++)
		if (strlen(c->map[i].from) == len && memcmp(c->map[i].from, v, len) == 0) {
			g = c->map[i].to;
			break;
		}
	glen = strlen(g);
	if (glen >= out_size)
		return CG_ERR_LIMIT;
	memcpy(out, g, glen + 1);
	return 0;
}

int
policy_column_shared(const struct policy_column *c, int bit)
{
	if (c->role != POLICY_ROLE_FEATURE && c->role != POLICY_ROLE_QUASI)
		return 0;
	if (!c->has_purposes)
		return 1;
	if (bit < 0)
		return c->purposes != 0;
	return bit < 32 && (c->purposes & (UINT32_C(1) << bit)) != 0;
}
