/* policy.c - see policy.h; top level, privacy, loading and lookups (policy_int.h for the split) */
#include "policy/policy.h"
#include "policy/policy_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libfyaml.h>
#include <sodium.h>

#include "base/utf8.h"

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
						policy_problem(c, at, "quasi_identifier '%s' of partners '%s' and '%s' must have the same "
						    "type, generalization, public flag (and, public bands, min and max): exports "
						    "show it as one column", x->name, p->partners[a].id ? p->partners[a].id : "?",
						    p->partners[b].id ? p->partners[b].id : "?");
					output_name(na, sizeof(na), p->partners[a].id, x);
					output_name(nb, sizeof(nb), p->partners[b].id, y);
					if (strcmp(na, nb) == 0 && !(b != a && x->role == POLICY_ROLE_QUASI &&
					    y->role == POLICY_ROLE_QUASI))
						policy_problem(c, at, "two columns would both be named '%s' in exports and queries", na);
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
				policy_problem(c, at, "purposes only apply to feature and quasi_identifier columns ('%s')",
				    cn);
			for (k = 0; k < col->npurpose_names; k++) {
				const char *name = col->purpose_names[k];
				int bit = policy_purpose_bit(p, name);
				if (bit < 0)
					policy_problem(c, at, "column '%s': purpose '%s' is not in the policy's purposes", cn,
					    policy_id_ok(name, POLICY_ID_MAX) ? name : "?");
				else if (strcmp(name, "match") == 0)
					policy_problem(c, at, "column '%s': 'match' is not a purpose a column is shared for",
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

	if (policy_want_sequence(c, n, keypos, "purposes") != 0)
		return;
	if (fy_node_sequence_item_count(n) > POLICY_PURPOSES_MAX) {
		policy_problem(c, keypos, "more than %d purposes", POLICY_PURPOSES_MAX);
		return;
	}
	while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
		struct pos at = policy_node_pos(item, keypos);
		char *s;

		if (policy_get_str(c, item, keypos, "a purpose", POLICY_VALUE_MAX, &s) != 0)
			continue;
		if (!policy_id_ok(s, POLICY_ID_MAX)) {
			policy_problem(c, at, "bad purpose name (want [a-z0-9_-]{1,%d})", POLICY_ID_MAX);
			free(s);
			continue;
		}
		for (j = 0; j < p->npurposes; j++)
			if (strcmp(p->purposes[j], s) == 0)
				break;
		if (j < p->npurposes) {
			policy_problem(c, at, "duplicate purpose '%s'", s);
			free(s);
			continue;
		}
		has_match |= strcmp(s, "match") == 0;
		has_analytics |= strcmp(s, "analytics") == 0;
		p->purposes[p->npurposes++] = s;
	}
	if (!has_match)
		policy_problem(c, keypos, "purposes must include 'match'");
	if (!has_analytics)
		policy_problem(c, keypos, "purposes must include 'analytics'");
}

static void
parse_email(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy *p)
{
	struct fy_node_pair *pair;
	void *it = NULL;
	struct key k;

	if (policy_want_mapping(c, n, keypos, "email") != 0)
		return;
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *v = fy_node_pair_value(pair);

		if (policy_key_of(c, pair, keypos, &k) != 0)
			continue;
		if (policy_key_is(&k, "gmail_dots"))
			(void)policy_get_bool(c, v, k.at, "gmail_dots", &p->email.gmail_dots);
		else if (policy_key_is(&k, "plus_tags"))
			(void)policy_get_bool(c, v, k.at, "plus_tags", &p->email.plus_tags);
		else if (policy_key_is(&k, "plus_tags_all"))
			(void)policy_get_bool(c, v, k.at, "plus_tags_all", &p->email.plus_tags_all);
		else if (policy_key_is(&k, "googlemail"))
			(void)policy_get_bool(c, v, k.at, "googlemail", &p->email.googlemail);
		else
			policy_unknown_key(c, &k, "in email");
	}
}

/* ---- privacy ---- */

int
policy_parse_nano(const char *s, size_t len, int64_t max, int64_t *out)
{
	int64_t whole = 0, frac = 0;
	size_t i = 0, nfrac = 0;
	int policy_digits = 0;

	*out = 0;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, policy_digits++) {
		if (whole > max / BILLION)
			return CG_ERR_LIMIT;
		whole = whole * 10 + (s[i] - '0');
	}
	if (i < len && s[i] == '.') {
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, nfrac++, policy_digits++) {
			if (nfrac == 9)
				return CG_ERR_FORMAT;   /* finer than 1e-9: not representable exactly */
			frac = frac * 10 + (s[i] - '0');
		}
		if (nfrac == 0)
			return CG_ERR_FORMAT;
	}
	if (i != len || policy_digits == 0)
		return CG_ERR_FORMAT;
	for (; nfrac < 9; nfrac++)
		frac *= 10;
	if (whole > max / BILLION || whole * BILLION > max - frac)
		return CG_ERR_LIMIT;
	*out = whole * BILLION + frac;
	return *out > 0 ? 0 : CG_ERR_LIMIT;
}

int
policy_get_nano(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, int64_t *out)
{
	return policy_get_number(c, n, keypos, what, 1, out);
}

/* A probability written as a decimal or in e-notation, 0 < x < 1 (or <= 1 with `one`). */
static int
get_prob(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, int one, double *out)
{
	struct pos at = policy_node_pos(n, keypos);
	char buf[64], *end;
	const char *s;
	size_t len;
	double d;

	if ((s = policy_scalar_text(c, n, at, what, &len)) == NULL)
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
	policy_problem(c, at, "%s must be a number above 0 and below %s", what, one ? "or equal to 1" : "1");
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

	if (policy_want_mapping(c, n, keypos, "privacy") != 0)
		return;
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *val = fy_node_pair_value(pair);

		if (policy_key_of(c, pair, keypos, &k) != 0)
			continue;
		v = 0;
		if (policy_key_is(&k, "threshold")) {
			policy_get_u32_range(c, val, k.at, "threshold", 1, 1000000, &v);
			if (v)
				pv->threshold = (uint32_t)v;
		} else if (policy_key_is(&k, "query_rho")) {
			if (policy_get_nano(c, val, k.at, "query_rho", &nano) == 0)
				pv->query_rho_nano = nano;
		} else if (policy_key_is(&k, "export_rho")) {
			if (policy_get_nano(c, val, k.at, "export_rho", &nano) == 0)
				pv->export_rho_nano = nano;
		} else if (policy_key_is(&k, "budget_rho")) {
			if (policy_get_nano(c, val, k.at, "budget_rho", &nano) == 0)
				pv->budget_rho_nano = nano;
		} else if (policy_key_is(&k, "partition_delta")) {
			if (get_prob(c, val, k.at, "partition_delta", 0, &d) == 0)
				pv->partition_delta = d;
		} else if (policy_key_is(&k, "l")) {
			policy_get_u32_range(c, val, k.at, "l", 1, 1000, &v);
			if (v)
				pv->l = (uint32_t)v;
		} else if (policy_key_is(&k, "suppression_limit")) {
			if (get_prob(c, val, k.at, "suppression_limit", 1, &d) == 0)
				pv->suppression_ppm = (uint32_t)(d * 1e6);   /* truncation: never more lenient */
		} else if (policy_key_is(&k, "max_exports")) {
			policy_get_u32_range(c, val, k.at, "max_exports", 0, 1000000, &v);
			pv->max_exports = (uint32_t)v;
		} else
			policy_unknown_key(c, &k, "in privacy");
	}
	if (pv->query_rho_nano > pv->budget_rho_nano)
		policy_problem(c, keypos, "privacy: query_rho is larger than budget_rho");
	if (pv->export_rho_nano > pv->budget_rho_nano)
		policy_problem(c, keypos, "privacy: export_rho is larger than budget_rho");
}

static void
parse_root(struct pctx *c, struct fy_node *root, struct policy *p)
{
	struct pos start = { 1, 1 }, at;
	struct fy_node_pair *pair;
	void *it = NULL;
	int seen_version = 0, seen_name = 0, seen_country = 0, seen_purposes = 0;
	int seen_partners = 0;
	struct fy_node *principals = NULL, *marketing = NULL;
	struct pos prpos = { 0, 0 }, mkpos = { 0, 0 };
	struct key k;

	at = policy_node_pos(root, start);
	if (root == NULL || !fy_node_is_mapping(root)) {
		policy_problem(c, at, "the policy must be a mapping");
		return;
	}
	while ((pair = fy_node_mapping_iterate(root, &it)) != NULL) {
		struct fy_node *v = fy_node_pair_value(pair);
		int64_t i64;
		char *s;

		if (policy_key_of(c, pair, at, &k) != 0)
			continue;
		if (policy_key_is(&k, "version")) {
			seen_version = 1;
			if (policy_get_int(c, v, k.at, "version", &i64) != 0)
				continue;
			if (i64 != 1)
				policy_problem(c, policy_node_pos(v, k.at), "unsupported version (want 1)");
			else
				p->version = 1;
		} else if (policy_key_is(&k, "name")) {
			seen_name = 1;
			(void)policy_get_str(c, v, k.at, "name", POLICY_NAME_MAX, &p->name);
		} else if (policy_key_is(&k, "k")) {
			if (policy_get_int(c, v, k.at, "k", &i64) != 0)
				continue;
			if (i64 < 2 || i64 > POLICY_K_MAX)
				policy_problem(c, policy_node_pos(v, k.at), "k must be between 2 and %d",
				    POLICY_K_MAX);
			else
				p->k = (uint32_t)i64;
		} else if (policy_key_is(&k, "default_phone_country")) {
			seen_country = 1;
			if (policy_get_str(c, v, k.at, "default_phone_country", POLICY_VALUE_MAX, &s) != 0)
				continue;
			if (strlen(s) != 2 || normalize_country_code(s) == NULL)
				policy_problem(c, policy_node_pos(v, k.at), "unknown default_phone_country "
				    "(want an ISO 3166-1 alpha-2 code such as CN)");
			else
				memcpy(p->default_country, s, 3);
			free(s);
		} else if (policy_key_is(&k, "phone_matching")) {
			if (policy_get_str(c, v, k.at, "phone_matching", POLICY_VALUE_MAX, &s) != 0)
				continue;
			if (strcmp(s, "unique") == 0 || strcmp(s, "never") == 0)
				p->phone_never = strcmp(s, "never") == 0;
			else
				policy_problem(c, policy_node_pos(v, k.at), "phone_matching must be unique or never");
			free(s);
		} else if (policy_key_is(&k, "email")) {
			parse_email(c, v, k.at, p);
		} else if (policy_key_is(&k, "purposes")) {
			seen_purposes = 1;
			parse_purposes(c, v, k.at, p);
		} else if (policy_key_is(&k, "partners")) {
			seen_partners = 1;
			policy_parse_partners(c, v, k.at, p);
		} else if (policy_key_is(&k, "network")) {
			policy_parse_network(c, v, k.at, p);
		} else if (policy_key_is(&k, "privacy")) {
			parse_privacy(c, v, k.at, p);
		} else if (policy_key_is(&k, "marketing")) {
			/* after the loop: it names partners and is checked against the privacy section */
			marketing = v;
			mkpos = k.at;
		} else if (policy_key_is(&k, "principals")) {
			/* after the loop: they name partners and purposes, wherever those are written */
			principals = v;
			prpos = k.at;
		} else
			policy_unknown_key(c, &k, "at the top level");
	}
	if (principals != NULL)
		policy_parse_principals(c, principals, prpos, p);
	if (marketing != NULL)
		policy_parse_marketing(c, marketing, mkpos, p);
	resolve_column_purposes(c, p);
	check_output_names(c, p);
	if (!seen_version)
		policy_problem(c, at, "missing 'version'");
	if (!seen_name)
		policy_problem(c, at, "missing 'name'");
	if (!seen_country)
		policy_problem(c, at, "missing 'default_phone_country'");
	if (!seen_purposes)
		policy_problem(c, at, "missing 'purposes'");
	if (!seen_partners)
		policy_problem(c, at, "missing 'partners'");
}

/*
 * YAML is Unicode text.  Checking it here also keeps libfyaml 0.7.12 away from
 * truncated UTF-8 sequences, on which its scanner never returns (e.g. "%\xf2"),
 * and from the YAML the policy format never uses but on which that version
 * crashes: fuzz_policy found "? a:\t? b" (an explicit key, a tab, another
 * explicit key) to crash it in fy_parser_destroy (the input is kept in
 * tests/fuzz/corpus/policy/libfyaml-crash-explicit-key).  So a tab is refused
 * anywhere, and an explicit key ("? " first on a line, after any "- ").
 */
static int
check_text(struct pctx *c, const char *buf, size_t len)
{
	const unsigned char *b = (const unsigned char *)buf;
	struct pos at = { 1, 1 };
	size_t i = 0, n;
	uint32_t cp;
	int line_start = 1;   /* only spaces and "- " so far on this line */

	while (i < len) {
		unsigned char ch = b[i];

		if (ch < 0x80) {
			if ((ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') || ch == 0x7f) {
				policy_problem(c, at, "control character in the policy file");
				return -1;
			}
			if (ch == '\t') {
				policy_problem(c, at, "a tab: a policy is indented and separated with spaces only");
				return -1;
			}
			if (line_start && ch == '?' && (i + 1 == len || b[i + 1] == ' ' || b[i + 1] == '\n' ||
			    b[i + 1] == '\r')) {
				policy_problem(c, at, "an explicit YAML key ('? '): not part of the policy format");
				return -1;
			}
			if (ch == '\n') {
				at.line++;
				at.col = 1;
				line_start = 1;
			} else {
				at.col++;
				line_start = line_start && (ch == ' ' || (ch == '-' && i + 1 < len && b[i + 1] == ' '));
			}
			i++;
			continue;
		}
		line_start = 0;
		if ((n = utf8_decode(b + i, len - i, &cp)) == 0)
			goto bad;
		i += n;
		at.col++;
	}
	return 0;
bad:
	policy_problem(c, at, "the policy file is not valid UTF-8");
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
		policy_problem(c, at, "YAML: %s", e->msg != NULL ? e->msg : "syntax error");
	}
	if (c->n == before) {
		struct pos at = { 1, 1 };

		policy_problem(c, at, "YAML: not a valid document");
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
		policy_problem(c, start, "empty policy");
		goto out;
	}
	if ((doc = fy_parse_load_document(fyp)) == NULL) {
		if (fy_diag_got_error(diag))
			collect_yaml_errors(c, diag);
		else
			policy_problem(c, start, "empty policy");
		goto out;
	}
	if ((extra = fy_parse_load_document(fyp)) != NULL) {
		policy_problem(c, policy_node_pos(fy_document_root(extra), start),
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
	p->marketing.min_audience = POLICY_MIN_AUDIENCE_DEFAULT;
	p->marketing.refusal_noise = POLICY_REFUSAL_NOISE_DEFAULT;
	p->marketing.max_refusals = POLICY_MAX_REFUSALS_DEFAULT;
	p->marketing.holdout_nano = POLICY_HOLDOUT_DEFAULT;
	p->marketing.value_cap = POLICY_VALUE_CAP_DEFAULT;
	if (len > POLICY_FILE_MAX) {
		struct pos none = { 0, 0 };

		policy_problem(&c, none, "policy file is larger than %d bytes", POLICY_FILE_MAX);
	} else {
		crypto_hash_sha256(p->hash, (const unsigned char *)buf, len);
		parse_yaml(&c, buf, len, p);
	}
	if (c.nomem) {
		r = cg_err_set(err, CG_ERR_NOMEM, "%s: out of memory", name);
		goto out;
	}
	if (c.n > 0) {
		policy_pctx_sort(&c);
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

