/* policy_yaml.c - see policy.h; reading YAML nodes and collecting problems (policy_int.h) */
#include "policy/policy.h"
#include "policy/policy_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libfyaml.h>

static void pctx_add(struct pctx *c, struct pos at, char *msg);

void CG_PRINTF(3, 4)
policy_problem(struct pctx *c, struct pos at, const char *fmt, ...)
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
void
policy_pctx_sort(struct pctx *c)
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
struct pos
policy_node_pos(struct fy_node *n, struct pos fallback)
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
		return policy_node_pos(fy_node_pair_key(pair), fallback);
	}
	if ((item = fy_node_sequence_iterate(n, &it)) == NULL)
		return fallback;
	return policy_node_pos(item, fallback);
}

/* A scalar's text, or NULL (with a problem) for a collection, an alias or a null. */
const char *
policy_scalar_text(struct pctx *c, struct fy_node *n, struct pos at, const char *what, size_t *lenp)
{
	const char *s;

	*lenp = 0;
	if (n == NULL || fy_node_get_type(n) != FYNT_SCALAR) {
		policy_problem(c, at, "%s must be a scalar", what);
		return NULL;
	}
	if (fy_node_get_style(n) == FYNS_ALIAS) {
		policy_problem(c, at, "%s: aliases are not supported", what);
		return NULL;
	}
	/* A plain empty value ("key:") is null, with no token. */
	if (fy_node_get_scalar_token(n) == NULL || (s = fy_node_get_scalar(n, lenp)) == NULL) {
		policy_problem(c, at, "%s has no value", what);
		return NULL;
	}
	return s;
}

int
policy_get_str(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, size_t max,
    char **out)
{
	struct pos at = policy_node_pos(n, keypos);
	const char *s;
	size_t len;

	*out = NULL;
	if ((s = policy_scalar_text(c, n, at, what, &len)) == NULL)
		return -1;
	if (len == 0) {
		policy_problem(c, at, "%s is empty", what);
		return -1;
	}
	if (len > max) {
		policy_problem(c, at, "%s is longer than %zu bytes", what, max);
		return -1;
	}
	if (memchr(s, '\0', len) != NULL) {
		policy_problem(c, at, "%s contains a NUL byte", what);
		return -1;
	}
	if ((*out = strndup(s, len)) == NULL) {
		c->nomem = 1;
		return -1;
	}
	return 0;
}

/* Decimal, optional '-', no spaces; CG_ERR_LIMIT on overflow, CG_ERR_FORMAT otherwise. */
int
policy_parse_i64(const char *s, size_t len, int64_t *out)
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
int
policy_get_number(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, int nano, int64_t *out)
{
	struct pos at = policy_node_pos(n, keypos);
	const char *s;
	size_t len;
	int r;

	*out = 0;
	if ((s = policy_scalar_text(c, n, at, what, &len)) == NULL)
		return -1;
	r = nano ? policy_parse_nano(s, len, POLICY_RHO_MAX, out) : policy_parse_i64(s, len, out);
	if (r != 0) {
		if (nano)
			policy_problem(c, at, "%s must be a decimal number above 0 and at most 1000000, with at most 9 "
			    "decimals", what);
		else
			policy_problem(c, at, "%s %s", what, r == CG_ERR_LIMIT ? "is out of range" : "is not an integer");
		return -1;
	}
	return 0;
}

int
policy_get_int(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, int64_t *out)
{
	return policy_get_number(c, n, keypos, what, 0, out);
}

int
policy_get_bool(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, int *out)
{
	struct pos at = policy_node_pos(n, keypos);
	const char *s;
	size_t len;

	*out = 0;
	if ((s = policy_scalar_text(c, n, at, what, &len)) == NULL)
		return -1;
	if (len == 4 && memcmp(s, "true", 4) == 0)
		*out = 1;
	else if (len == 5 && memcmp(s, "false", 5) == 0)
		*out = 0;
	else {
		policy_problem(c, at, "%s must be true or false", what);
		return -1;
	}
	return 0;
}

int
policy_want_mapping(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what)
{
	if (n == NULL || !fy_node_is_mapping(n)) {
		policy_problem(c, policy_node_pos(n, keypos), "%s must be a mapping", what);
		return -1;
	}
	return 0;
}

int
policy_want_sequence(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what)
{
	if (n == NULL || !fy_node_is_sequence(n)) {
		policy_problem(c, policy_node_pos(n, keypos), "%s must be a list", what);
		return -1;
	}
	return 0;
}


int
policy_key_of(struct pctx *c, struct fy_node_pair *pair, struct pos fallback, struct key *k)
{
	struct fy_node *kn = fy_node_pair_key(pair);

	k->at = policy_node_pos(kn, fallback);
	k->s = NULL;
	k->len = 0;
	if (kn == NULL || fy_node_get_type(kn) != FYNT_SCALAR ||
	    fy_node_get_style(kn) == FYNS_ALIAS ||
	    (k->s = fy_node_get_scalar(kn, &k->len)) == NULL) {
		policy_problem(c, k->at, "a key must be a plain scalar");
		return -1;
	}
	return 0;
}

int
policy_key_is(const struct key *k, const char *name)
{
	return k->len == strlen(name) && memcmp(k->s, name, k->len) == 0;
}

/* For a first pass that looks for one key: bad keys are reported by the main pass. */
int
policy_pair_key_is(struct fy_node_pair *pair, const char *name)
{
	struct fy_node *kn = fy_node_pair_key(pair);
	const char *s;
	size_t len;

	if (kn == NULL || fy_node_get_type(kn) != FYNT_SCALAR ||
	    fy_node_get_style(kn) == FYNS_ALIAS || (s = fy_node_get_scalar(kn, &len)) == NULL)
		return 0;
	return len == strlen(name) && memcmp(s, name, len) == 0;
}

void
policy_unknown_key(struct pctx *c, const struct key *k, const char *where)
{
	char buf[POLICY_SHOW_MAX + 4];

	policy_problem(c, k->at, "unknown key '%s' %s", show(k->s, k->len, buf), where);
}

int
policy_id_ok(const char *s, size_t max)
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
int
policy_colname_ok(const char *s)
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

