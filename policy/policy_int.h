/* policy_int.h - internal to policy/: the types, limits and YAML-reading helpers
 * that policy.c, policy_yaml.c, policy_schema.c, policy_network.c and policy_values.c
 * share.  Not part of the module's interface: only policy*.c include it; callers
 * use policy.h. */
#ifndef CG_POLICY_INT_H
#define CG_POLICY_INT_H

#include <stddef.h>
#include <stdint.h>

#include <libfyaml.h>

#include "policy/policy.h"

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

struct fy_node;

/* One key of a mapping: its text (not NUL-terminated) and where it is. */
struct key {
	const char *s;
	size_t len;
	struct pos at;
};

/* policy.c */
int policy_get_nano(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, int64_t *out);

/* policy_yaml.c */
void CG_PRINTF(3, 4) policy_problem(struct pctx *c, struct pos at, const char *fmt, ...);
void policy_pctx_sort(struct pctx *c);
struct pos policy_node_pos(struct fy_node *n, struct pos fallback);
const char *policy_scalar_text(struct pctx *c, struct fy_node *n, struct pos at, const char *what, size_t *lenp);
int policy_get_str(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, size_t max, char **out);
int policy_parse_i64(const char *s, size_t len, int64_t *out);
int policy_get_number(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, int nano, int64_t *out);
int policy_get_int(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, int64_t *out);
int policy_get_bool(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, int *out);
int policy_want_mapping(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what);
int policy_want_sequence(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what);
int policy_key_of(struct pctx *c, struct fy_node_pair *pair, struct pos fallback, struct key *k);
int policy_key_is(const struct key *k, const char *name);
int policy_pair_key_is(struct fy_node_pair *pair, const char *name);
void policy_unknown_key(struct pctx *c, const struct key *k, const char *where);
int policy_id_ok(const char *s, size_t max);
int policy_colname_ok(const char *s);

/* policy_schema.c */
size_t policy_items_alloc(struct pctx *c, struct fy_node *n, struct pos keypos, const char *what, size_t max, const char *too_many, size_t elem, void **out);
void policy_parse_partners(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy *p);

/* policy_network.c */
void policy_get_u32_range(struct pctx *c, struct fy_node *v, struct pos keypos, const char *what, uint64_t lo, uint64_t hi, uint64_t *out);
void policy_parse_network(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy *p);
void policy_parse_principals(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy *p);

/* policy_marketing.c (after the partners and the privacy section: it names partners, compares to budget_rho) */
void policy_parse_marketing(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy *p);

/* policy_values.c */
int policy_digits(const char *s, size_t n);

#endif
