/* rule.c - see rule.h */
#include "gateway/rule.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "policy/policy.h"

enum rule_kind { RULE_AND = 1, RULE_OR, RULE_NOT, RULE_CMP };
enum rule_op { RULE_EQ = 1, RULE_NE, RULE_LT, RULE_LE, RULE_GT, RULE_GE };

#define RULE_NAME_MAX 160
#define RULE_VALUE_MAX 1024

struct rule_node {
	enum rule_kind kind;
	enum rule_op op;
	int a, b;                            /* children (AND, OR: both; NOT: a) */
	size_t off;                          /* offset of the column name or the keyword */
	size_t voff;                         /* offset of the value */
	char name[RULE_NAME_MAX];
	char value[RULE_VALUE_MAX];
	int quoted;
	int64_t ival;                        /* bound: an int feature's threshold */
	const struct join_col *jc;           /* bound: the column */
};

struct rule {
	struct rule_node n[RULE_NODES_MAX];
	size_t nn;
	int root;
	int bound;
};

/* The parser's position. */
struct rule_lex {
	const char *s;
	size_t len, pos;
	struct rule *r;
	struct cg_err *err;
	int depth;
};

static const char *const rule_op_text[] = { "", "=", "!=", "<", "<=", ">", ">=" };

static int
rule_fail(struct rule_lex *lx, size_t off, const char *why)
{
	return cg_err_set(lx->err, CG_ERR_FORMAT, "rule: offset %zu: %s", off, why);
}

static void
rule_skip(struct rule_lex *lx)
{
	while (lx->pos < lx->len && (lx->s[lx->pos] == ' ' || lx->s[lx->pos] == '\t' || lx->s[lx->pos] == '\n' ||
	    lx->s[lx->pos] == '\r'))
		lx->pos++;
}

static int
rule_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
	    c == '+' || c == '-';
}

/* The length of the bare word at the position (0 if none). */
static size_t
rule_word(const struct rule_lex *lx)
{
	size_t i = lx->pos;

	while (i < lx->len && rule_word_char(lx->s[i]))
		i++;
	return i - lx->pos;
}

/* Is the next token the keyword kw (a whole word)? */
static int
rule_keyword(const struct rule_lex *lx, const char *kw)
{
	size_t n = strlen(kw);

	return rule_word(lx) == n && memcmp(lx->s + lx->pos, kw, n) == 0;
}

static int
rule_node_new(struct rule_lex *lx, enum rule_kind kind, size_t off, int *idx)
{
	struct rule_node *nd;

	if (lx->r->nn == RULE_NODES_MAX)
		return rule_fail(lx, off, "the rule is too long (at most 256 terms)");
	nd = &lx->r->n[lx->r->nn];
	memset(nd, 0, sizeof(*nd));
	nd->kind = kind;
	nd->off = off;
	nd->a = nd->b = -1;
	*idx = (int)lx->r->nn++;
	return 0;
}

static int rule_or(struct rule_lex *lx, int *out);

static int
rule_compare(struct rule_lex *lx, int *out)
{
	struct rule_node *nd;
	size_t off = lx->pos, n, i;
	enum rule_op op = 0;
	int r, idx;

	n = rule_word(lx);
	if (n == 0 || !(lx->s[off] >= 'a' && lx->s[off] <= 'z'))
		return rule_fail(lx, off, lx->pos == lx->len ? "expected a column name, found the end of the rule" :
		    "expected a column name (lower-case letters, digits and '_', starting with a letter)");
	for (i = 0; i < n; i++)
		if (!((lx->s[off + i] >= 'a' && lx->s[off + i] <= 'z') || (lx->s[off + i] >= '0' && lx->s[off + i] <= '9') ||
		    lx->s[off + i] == '_'))
			return rule_fail(lx, off + i, "a column name has only lower-case letters, digits and '_'");
	if (n >= RULE_NAME_MAX)
		return rule_fail(lx, off, "column name too long");
	if (rule_keyword(lx, "and") || rule_keyword(lx, "or") || rule_keyword(lx, "not"))
		return rule_fail(lx, off, "expected a column name, found a keyword");
	if ((r = rule_node_new(lx, RULE_CMP, off, &idx)) != 0)
		return r;
	nd = &lx->r->n[idx];
	memcpy(nd->name, lx->s + off, n);
	nd->name[n] = '\0';
	lx->pos += n;
	rule_skip(lx);
	if (lx->pos < lx->len) {
		char c = lx->s[lx->pos], d = lx->pos + 1 < lx->len ? lx->s[lx->pos + 1] : '\0';

		if (c == '=')
			op = RULE_EQ;
		else if (c == '!' && d == '=')
			op = RULE_NE;
		else if (c == '<')
			op = d == '=' ? RULE_LE : RULE_LT;
		else if (c == '>')
			op = d == '=' ? RULE_GE : RULE_GT;
	}
	if (op == 0)
		return rule_fail(lx, lx->pos, "expected a comparison (=, !=, <, <=, >, >=) after the column name");
	nd->op = op;
	lx->pos += strlen(rule_op_text[op]);
	rule_skip(lx);
	nd->voff = lx->pos;
	if (lx->pos < lx->len && lx->s[lx->pos] == '"') {
		size_t start = ++lx->pos;

		while (lx->pos < lx->len && lx->s[lx->pos] != '"') {
			if ((unsigned char)lx->s[lx->pos] < 0x20 || lx->s[lx->pos] == 0x7f)
				return rule_fail(lx, lx->pos, "a control character in a quoted value");
			lx->pos++;
		}
		if (lx->pos == lx->len)
			return rule_fail(lx, nd->voff, "a quoted value is not closed");
		n = lx->pos - start;
		if (n >= RULE_VALUE_MAX)
			return rule_fail(lx, nd->voff, "value too long");
		memcpy(nd->value, lx->s + start, n);
		nd->value[n] = '\0';
		nd->quoted = 1;
		lx->pos++;
	} else {
		n = rule_word(lx);
		if (n == 0)
			return rule_fail(lx, lx->pos, lx->pos == lx->len ? "expected a value, found the end of the rule" :
			    "expected a value (a number, a word of letters, digits, '_', '.', '+', '-', or \"quoted\")");
		if (n >= RULE_VALUE_MAX)
			return rule_fail(lx, nd->voff, "value too long");
		memcpy(nd->value, lx->s + lx->pos, n);
		nd->value[n] = '\0';
		lx->pos += n;
	}
	*out = idx;
	return 0;
}

static int
rule_unary(struct rule_lex *lx, int *out)
{
	size_t off;
	int r, idx, child;

	rule_skip(lx);
	off = lx->pos;
	if (++lx->depth > RULE_DEPTH_MAX)
		return rule_fail(lx, off, "nested too deeply (at most 32 levels)");
	if (rule_keyword(lx, "not")) {
		lx->pos += 3;
		if ((r = rule_unary(lx, &child)) != 0 || (r = rule_node_new(lx, RULE_NOT, off, &idx)) != 0)
			return r;
		lx->r->n[idx].a = child;
		*out = idx;
	} else if (lx->pos < lx->len && lx->s[lx->pos] == '(') {
		lx->pos++;
		if ((r = rule_or(lx, out)) != 0)
			return r;
		rule_skip(lx);
		if (lx->pos == lx->len || lx->s[lx->pos] != ')')
			return cg_err_set(lx->err, CG_ERR_FORMAT, "rule: offset %zu: expected ')' to close the '(' at "
			    "offset %zu", lx->pos, off);
		lx->pos++;
	} else if ((r = rule_compare(lx, out)) != 0)
		return r;
	lx->depth--;
	return 0;
}

/* One level of "and" (kw "and", below: rule_unary) or "or" (kw "or", below: the "and" level). */
static int
rule_level(struct rule_lex *lx, const char *kw, enum rule_kind kind, int *out)
{
	int r, left, right, idx;
	size_t off;

	if ((r = kind == RULE_OR ? rule_level(lx, "and", RULE_AND, &left) : rule_unary(lx, &left)) != 0)
		return r;
	for (;;) {
		rule_skip(lx);
		if (!rule_keyword(lx, kw))
			break;
		off = lx->pos;
		lx->pos += strlen(kw);
		if ((r = kind == RULE_OR ? rule_level(lx, "and", RULE_AND, &right) : rule_unary(lx, &right)) != 0 ||
		    (r = rule_node_new(lx, kind, off, &idx)) != 0)
			return r;
		lx->r->n[idx].a = left;
		lx->r->n[idx].b = right;
		left = idx;
	}
	*out = left;
	return 0;
}

static int
rule_or(struct rule_lex *lx, int *out)
{
	return rule_level(lx, "or", RULE_OR, out);
}

int
rule_parse(const char *text, size_t len, struct rule **out, struct cg_err *err)
{
	struct rule_lex lx = { text, len, 0, NULL, err, 0 };
	int r;

	*out = NULL;
	if (len > RULE_TEXT_MAX)
		return cg_err_set(err, CG_ERR_FORMAT, "rule: longer than %d bytes", RULE_TEXT_MAX);
	if (memchr(text, '\0', len) != NULL)
		return cg_err_set(err, CG_ERR_FORMAT, "rule: offset %zu: a NUL byte", (size_t)((const char *)memchr(text,
		    '\0', len) - text));
	if ((lx.r = calloc(1, sizeof(*lx.r))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	rule_skip(&lx);
	if (lx.pos == len) {
		r = cg_err_set(err, CG_ERR_FORMAT, "rule: empty (write e.g. \"g_watch_minutes >= 600\")");
		goto out;
	}
	if ((r = rule_or(&lx, &lx.r->root)) != 0)
		goto out;
	rule_skip(&lx);
	if (lx.pos != len) {
		r = rule_fail(&lx, lx.pos, lx.s[lx.pos] == ')' ? "a ')' without its '('" :
		    "expected 'and', 'or' or the end of the rule");
		goto out;
	}
	*out = lx.r;
	lx.r = NULL;
out:
	free(lx.r);
	return r;
}

void
rule_free(struct rule *r)
{
	free(r);
}

/* Is `v` a group a quasi-identifier generalizes to (its finest band, or a map's group)? */
static int
rule_quasi_group(const struct policy_column *c, const char *v)
{
	char label[64];
	size_t i;

	if (c->gen == POLICY_GEN_BAND) {
		char *end;
		long long lo;

		errno = 0;
		lo = strtoll(v, &end, 10);
		if (errno != 0 || end == v || *end != '-')
			return 0;
		return policy_generalize_band(c->band, lo, label, sizeof(label)) == 0 && strcmp(label, v) == 0;
	}
	if (c->gen == POLICY_GEN_MAP) {
		if (c->other != NULL && strcmp(c->other, v) == 0)
			return 1;
		for (i = 0; i < c->nmap; i++)
			if (strcmp(c->map[i].to, v) == 0)
				return 1;
	}
	return 0;
}

static int
rule_bind_cmp(struct rule_node *nd, const struct join_col *cols, size_t ncols, struct cg_err *err)
{
	const struct policy_column *c;
	size_t i;

	nd->jc = NULL;
	for (i = 0; i < ncols; i++)
		if (strcmp(cols[i].name, nd->name) == 0)
			nd->jc = &cols[i];
	if (nd->jc == NULL)
		return cg_err_set(err, CG_ERR_POLICY, "rule: offset %zu: no column '%s' shared for marketing (a "
		    "quasi-identifier by its name, a feature as <partner>_<column>)", nd->off, nd->name);
	c = nd->jc->col;
	if (c->role == POLICY_ROLE_QUASI) {
		if (nd->op != RULE_EQ && nd->op != RULE_NE)
			return cg_err_set(err, CG_ERR_POLICY, "rule: offset %zu: '%s' is a quasi-identifier: compare it with "
			    "= or != to one of its groups", nd->off, nd->name);
		if (!rule_quasi_group(c, nd->value) || (nd->jc->alt != NULL && !rule_quasi_group(nd->jc->alt, nd->value)))
			return cg_err_set(err, CG_ERR_POLICY, "rule: offset %zu: '%s' is not a group of '%s' (its finest "
			    "band such as 20-29, or a group of its map)", nd->voff, nd->value, nd->name);
		return 0;
	}
	if (c->type == POLICY_TYPE_INT) {
		char *end;

		errno = 0;
		nd->ival = strtoll(nd->value, &end, 10);
		if (nd->quoted || errno != 0 || end == nd->value || *end != '\0')
			return cg_err_set(err, CG_ERR_POLICY, "rule: offset %zu: '%s' is an int column: compare it to an "
			    "integer", nd->voff, nd->name);
		return 0;
	}
	if (c->type == POLICY_TYPE_CATEGORY) {
		if (nd->op != RULE_EQ && nd->op != RULE_NE)
			return cg_err_set(err, CG_ERR_POLICY, "rule: offset %zu: '%s' is a category: compare it with = or "
			    "!=", nd->off, nd->name);
		for (i = 0; i < c->nvalues; i++)
			if (strcmp(c->values[i], nd->value) == 0)
				return 0;
		return cg_err_set(err, CG_ERR_POLICY, "rule: offset %zu: '%s' is not one of the values of '%s'", nd->voff,
		    nd->value, nd->name);
	}
	return cg_err_set(err, CG_ERR_POLICY, "rule: offset %zu: '%s' cannot be in a rule (only int features, "
	    "categories and quasi-identifiers' groups)", nd->off, nd->name);
}

int
rule_bind(struct rule *r, const struct join_col *cols, size_t ncols, struct cg_err *err)
{
	size_t i;
	int e;

	r->bound = 0;
	for (i = 0; i < r->nn; i++)
		if (r->n[i].kind == RULE_CMP && (e = rule_bind_cmp(&r->n[i], cols, ncols, err)) != 0)
			return e;
	r->bound = 1;
	return 0;
}

static int
rule_eval_cmp(const struct rule_node *nd, Crossgate__RecordPayload *const pl[2])
{
	const struct policy_column *c;
	const Crossgate__Field *f = join_col_field(nd->jc, pl, &c);
	char label[RULE_VALUE_MAX];
	int cmp;

	if (f == NULL)
		return 0;
	if (c->role == POLICY_ROLE_QUASI) {
		if (f->value_case == CROSSGATE__FIELD__VALUE_INT_VALUE) {
			if (c->gen != POLICY_GEN_BAND || policy_generalize_int(c, f->int_value, label, sizeof(label)) != 0)
				return 0;
		} else if (f->value_case != CROSSGATE__FIELD__VALUE_STR_VALUE ||
		    policy_generalize_str(c, f->str_value, strlen(f->str_value), label, sizeof(label)) != 0)
			return 0;
		cmp = strcmp(label, nd->value) == 0;
		return nd->op == RULE_EQ ? cmp : !cmp;
	}
	if (f->value_case == CROSSGATE__FIELD__VALUE_INT_VALUE) {
		if (c->type != POLICY_TYPE_INT)
			return 0;
		switch (nd->op) {
		case RULE_EQ: return f->int_value == nd->ival;
		case RULE_NE: return f->int_value != nd->ival;
		case RULE_LT: return f->int_value < nd->ival;
		case RULE_LE: return f->int_value <= nd->ival;
		case RULE_GT: return f->int_value > nd->ival;
		case RULE_GE: return f->int_value >= nd->ival;
		}
		return 0;
	}
	if (f->value_case != CROSSGATE__FIELD__VALUE_STR_VALUE || c->type != POLICY_TYPE_CATEGORY)
		return 0;
	cmp = strcmp(f->str_value, nd->value) == 0;
	return nd->op == RULE_EQ ? cmp : !cmp;
}

static int
rule_eval_node(const struct rule *r, int i, Crossgate__RecordPayload *const pl[2])
{
	const struct rule_node *nd = &r->n[i];

	switch (nd->kind) {
	case RULE_AND: return rule_eval_node(r, nd->a, pl) && rule_eval_node(r, nd->b, pl);
	case RULE_OR: return rule_eval_node(r, nd->a, pl) || rule_eval_node(r, nd->b, pl);
	case RULE_NOT: return !rule_eval_node(r, nd->a, pl);
	case RULE_CMP: return rule_eval_cmp(nd, pl);
	}
	return 0;
}

int
rule_eval(const struct rule *r, Crossgate__RecordPayload *const pl[2])
{
	return r->bound ? rule_eval_node(r, r->root, pl) : 0;
}

/* Append to out (size) at *len, counting what would not fit. */
static void
rule_put(char *out, size_t size, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (out != NULL && *len < size)
		snprintf(out + *len, size - *len, "%s", s);
	*len += n;
}

/*
 * The fewest parentheses that give back the same tree: "and" binds tighter
 * than "or" and both group to the left, so parentheses surround an "or"
 * under an "and" or a "not", an "and" under a "not", and a right operand of
 * its parent's own kind.  A canonical form re-parses to the same tree, no
 * deeper than the rule it came from.
 */
static void
rule_canon_node(const struct rule *r, int i, char *out, size_t size, size_t *len)
{
	const struct rule_node *nd = &r->n[i];
	int q, k;

	switch (nd->kind) {
	case RULE_AND:
	case RULE_OR:
		for (k = 0; k < 2; k++) {
			const struct rule_node *ch = &r->n[k == 0 ? nd->a : nd->b];
			int paren = (nd->kind == RULE_AND && ch->kind == RULE_OR) || (k == 1 && ch->kind == nd->kind);

			if (k == 1)
				rule_put(out, size, len, nd->kind == RULE_AND ? " and " : " or ");
			if (paren)
				rule_put(out, size, len, "(");
			rule_canon_node(r, k == 0 ? nd->a : nd->b, out, size, len);
			if (paren)
				rule_put(out, size, len, ")");
		}
		break;
	case RULE_NOT:
		q = r->n[nd->a].kind == RULE_AND || r->n[nd->a].kind == RULE_OR;
		rule_put(out, size, len, q ? "not (" : "not ");
		rule_canon_node(r, nd->a, out, size, len);
		if (q)
			rule_put(out, size, len, ")");
		break;
	case RULE_CMP:
		/* an int column's threshold bare (as parsed: "0600" is 600); anything else quoted */
		q = !(r->bound && nd->jc->col->role != POLICY_ROLE_QUASI && nd->jc->col->type == POLICY_TYPE_INT);
		rule_put(out, size, len, nd->name);
		rule_put(out, size, len, " ");
		rule_put(out, size, len, rule_op_text[nd->op]);
		rule_put(out, size, len, q ? " \"" : " ");
		if (q)
			rule_put(out, size, len, nd->value);
		else {
			char num[24];
			snprintf(num, sizeof(num), "%lld", (long long)nd->ival);
			rule_put(out, size, len, num);
		}
		if (q)
			rule_put(out, size, len, "\"");
		break;
	}
}

size_t
rule_canon(const struct rule *r, char *out, size_t size)
{
	size_t len = 0;

	if (out != NULL && size > 0)
		out[0] = '\0';
	rule_canon_node(r, r->root, out, size, &len);
	return len;
}

void
rule_hash_hex(const struct rule *r, char out[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	size_t n = rule_canon(r, NULL, 0);
	char *s = malloc(n + 1);

	if (s == NULL) {
		/* no memory: the hash of nothing would mislead; an all-zero hash says "unknown" */
		memset(out, '0', 64);
		out[64] = '\0';
		return;
	}
	rule_canon(r, s, n + 1);
	crypto_hash_sha256(h, (const unsigned char *)s, n);
	sodium_bin2hex(out, 65, h, sizeof(h));
	free(s);
}
