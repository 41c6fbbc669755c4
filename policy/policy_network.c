/* policy_network.c - see policy.h; the network and principals sections (policy_int.h) */
#include "policy/policy.h"
#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libfyaml.h>

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

void
policy_get_u32_range(struct pctx *c, struct fy_node *v, struct pos keypos, const char *what, uint64_t lo,
    uint64_t hi, uint64_t *out)
{
	int64_t i64;

	if (policy_get_int(c, v, keypos, what, &i64) != 0)
		return;
	if (i64 < 0 || (uint64_t)i64 < lo || (uint64_t)i64 > hi)
		policy_problem(c, policy_node_pos(v, keypos), "%s must be between %" PRIu64 " and %" PRIu64, what, lo, hi);
	else
		*out = (uint64_t)i64;
}

/* "ADDR" or "ADDR/BITS", IPv4 or IPv6 (no brackets), no host bits set past the prefix. */
static int
prefix_parse(const char *s, struct policy_prefix *out, const char **why)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	unsigned long bits = 0;
	unsigned char v4[4];
	unsigned i, max;
	char *end;

	memset(out, 0, sizeof(*out));
	*why = "is not an IPv4 or IPv6 address, optionally with /BITS";
	if (alen == 0 || alen >= sizeof(addr))
		return -1;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, v4) == 1) {
		out->b[10] = out->b[11] = 0xff;
		memcpy(out->b + 12, v4, 4);
		max = 32;
	} else if (inet_pton(AF_INET6, addr, out->b) == 1)
		max = 128;
	else
		return -1;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9' || (bits = strtoul(slash + 1, &end, 10)) > max || *end != '\0') {
			*why = max == 32 ? "has a prefix that is not /0 to /32" : "has a prefix that is not /0 to /128";
			return -1;
		}
	} else
		bits = max;
	if (max == 128 && bits > 64) {
		*why = "is an IPv6 prefix longer than /64 (sources are counted per /64)";
		return -1;
	}
	out->bits = (unsigned)bits + (max == 32 ? 96 : 0);
	for (i = out->bits; i < 128; i++)
		if (out->b[i / 8] & (0x80u >> (i % 8))) {
			*why = "has address bits set past its prefix";
			return -1;
		}
	return 0;
}

static void
parse_trusted(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy_network *net)
{
	struct fy_node *item;
	void *it = NULL;

	if (policy_want_sequence(c, n, keypos, "trusted_sources") != 0)
		return;
	while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
		struct pos at = policy_node_pos(item, keypos);
		const char *why;
		char *s;

		if (policy_get_str(c, item, keypos, "a trusted source", 64, &s) != 0)
			continue;
		if (net->ntrusted == POLICY_NET_TRUSTED_MAX)
			policy_problem(c, at, "trusted_sources: more than %d networks", POLICY_NET_TRUSTED_MAX);
		else if (prefix_parse(s, &net->trusted[net->ntrusted], &why) != 0)
			policy_problem(c, at, "trusted source \"%s\" %s", strspn(s, "0123456789abcdefABCDEF.:/") ==
			    strlen(s) ? s : "?", why);
		else
			net->ntrusted++;
		free(s);
	}
}

/* max_startups: "START:RATE:FULL", OpenSSH's MaxStartups (gateway/admit.h). */
static void
parse_startups(struct pctx *c, struct fy_node *v, struct pos keypos, struct policy_network *net)
{
	char *s = NULL, tail;
	unsigned start, rate, full;

	if (policy_get_str(c, v, keypos, "max_startups", 64, &s) != 0)
		return;
	if (sscanf(s, "%u:%u:%u%c", &start, &rate, &full, &tail) != 3 || full == 0 || start > full || rate > 100)
		policy_problem(c, policy_node_pos(v, keypos), "max_startups must be \"START:RATE:FULL\" with 0 < START <= FULL "
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

	if (policy_want_mapping(c, n, keypos, "network limits") != 0)
		return;
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *val = fy_node_pair_value(pair);

		if (policy_key_of(c, pair, keypos, &k) != 0)
			continue;
		v = 0;
		if (policy_key_is(&k, "frame_max")) {
			policy_get_u32_range(c, val, k.at, "frame_max", POLICY_NET_FRAME_MAX_MIN, 16u * 1024 * 1024, &v);
			if (v)
				net->frame_max = (uint32_t)v;
		} else if (policy_key_is(&k, "preauth_frame_max")) {
			policy_get_u32_range(c, val, k.at, "preauth_frame_max", POLICY_NET_PREAUTH_FRAME_MAX_MIN,
			    1024 * 1024, &v);
			if (v)
				net->preauth_frame_max = (uint32_t)v;
		} else if (policy_key_is(&k, "push_max_bytes")) {
			policy_get_u32_range(c, val, k.at, "push_max_bytes", 1024, UINT64_C(1) << 40, &v);
			if (v)
				net->push_max_bytes = v;
		} else if (policy_key_is(&k, "max_connections")) {
			policy_get_u32_range(c, val, k.at, "max_connections", 1, POLICY_NET_MAX_CONNECTIONS_MAX, &v);
			if (v)
				net->max_connections = (uint32_t)v;
		} else if (policy_key_is(&k, "max_startups")) {
			parse_startups(c, val, k.at, net);
		} else if (policy_key_is(&k, "per_source_max")) {
			policy_get_u32_range(c, val, k.at, "per_source_max", 0, POLICY_NET_MAX_CONNECTIONS_MAX, &v);
			net->per_source_max = (uint32_t)v;
			net->per_source_set = 1;
		} else if (policy_key_is(&k, "trusted_sources")) {
			parse_trusted(c, val, k.at, net);
		} else if (policy_key_is(&k, "trusted_startups")) {
			policy_get_u32_range(c, val, k.at, "trusted_startups", 1, POLICY_NET_MAX_CONNECTIONS_MAX, &v);
			net->trusted_startups = (uint32_t)v;
			net->trusted_startups_set = 1;
		} else if (policy_key_is(&k, "penalty_max")) {
			policy_get_u32_range(c, val, k.at, "penalty_max", 0, 86400, &v);
			net->penalty_max = (uint32_t)v;
		} else if (policy_key_is(&k, "handshake_timeout")) {
			policy_get_u32_range(c, val, k.at, "handshake_timeout", 1, POLICY_NET_TIMEOUT_MAX, &v);
			if (v)
				net->handshake_timeout = (uint32_t)v;
		} else if (policy_key_is(&k, "read_timeout")) {
			policy_get_u32_range(c, val, k.at, "read_timeout", 1, POLICY_NET_TIMEOUT_MAX, &v);
			if (v)
				net->read_timeout = (uint32_t)v;
		} else if (policy_key_is(&k, "idle_timeout")) {
			policy_get_u32_range(c, val, k.at, "idle_timeout", 1, POLICY_NET_TIMEOUT_MAX, &v);
			if (v)
				net->idle_timeout = (uint32_t)v;
		} else
			policy_unknown_key(c, &k, "in network limits");
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

void
policy_parse_network(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy *p)
{
	struct policy_network *net = &p->net;
	struct fy_node_pair *pair;
	void *it = NULL;
	int seen_ca = 0, seen_listen = 0;
	struct key k;
	uint64_t v;

	if (policy_want_mapping(c, n, keypos, "network") != 0)
		return;
	net->present = 1;
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *val = fy_node_pair_value(pair);

		if (policy_key_of(c, pair, keypos, &k) != 0)
			continue;
		if (policy_key_is(&k, "ca")) {
			seen_ca = 1;
			if (policy_get_str(c, val, k.at, "network ca", POLICY_VALUE_MAX, &net->ca) != 0)
				continue;
			if ((net->ca_path = resolve_path(c->name, net->ca)) == NULL)
				c->nomem = 1;
		} else if (policy_key_is(&k, "listen")) {
			seen_listen = 1;
			if (policy_get_str(c, val, k.at, "network listen", 300, &net->listen) != 0)
				continue;
			if (!listen_ok(net->listen)) {
				policy_problem(c, policy_node_pos(val, k.at), "network listen must be HOST:PORT with a port "
				    "from 0 to 65535 (an IPv6 address in brackets)");
				free(net->listen);
				net->listen = NULL;
			}
		} else if (policy_key_is(&k, "limits")) {
			parse_limits(c, val, k.at, net);
		} else if (policy_key_is(&k, "heartbeat_interval")) {
			v = 0;
			policy_get_u32_range(c, val, k.at, "heartbeat_interval", 1, POLICY_NET_HEARTBEAT_MAX, &v);
			if (v)
				net->heartbeat_interval = (uint32_t)v;
		} else
			policy_unknown_key(c, &k, "in network");
	}
	if (!seen_ca)
		policy_problem(c, keypos, "network has no ca (the CA file that client certificates must chain to)");
	if (!seen_listen)
		policy_problem(c, keypos, "network has no listen address");
	if (net->preauth_frame_max > net->frame_max)
		policy_problem(c, keypos, "network limits: preauth_frame_max (%u) is larger than frame_max (%u)",
		    net->preauth_frame_max, net->frame_max);
	if (net->startups_full == 0) {       /* half the slots for handshakes, half kept for principals */
		net->startups_full = net->max_connections / 2 > 0 ? net->max_connections / 2 : 1;
		net->startups_start = net->startups_full / 2 > 0 ? net->startups_full / 2 : 1;
		net->startups_rate = 30;
	} else if (net->startups_full >= net->max_connections)
		policy_problem(c, keypos, "network limits: max_startups full (%u) must be below max_connections (%u), "
		    "so that slots stay reserved for authenticated principals", net->startups_full, net->max_connections);
	if (!net->per_source_set)
		net->per_source_max = net->startups_full < POLICY_NET_PER_SOURCE_DEFAULT ? net->startups_full :
		    POLICY_NET_PER_SOURCE_DEFAULT;
	if (net->trusted_startups_set && net->ntrusted == 0)
		policy_problem(c, keypos, "network limits: trusted_startups without trusted_sources");
	else if (net->ntrusted > 0 && !net->trusted_startups_set) {
		net->trusted_startups = (net->max_connections - net->startups_full) / 2;
		if (net->trusted_startups > POLICY_NET_TRUSTED_STARTUPS_DEFAULT)
			net->trusted_startups = POLICY_NET_TRUSTED_STARTUPS_DEFAULT;
		if (net->trusted_startups == 0)
			policy_problem(c, keypos, "network limits: no slot left for trusted_sources (max_connections %u, "
			    "max_startups full %u)", net->max_connections, net->startups_full);
	} else if (net->ntrusted > 0 && net->startups_full + net->trusted_startups >= net->max_connections)
		policy_problem(c, keypos, "network limits: max_startups full (%u) + trusted_startups (%u) must be below "
		    "max_connections (%u), so that slots stay reserved for authenticated principals",
		    net->startups_full, net->trusted_startups, net->max_connections);
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

	if (policy_want_sequence(c, n, keypos, "principal purposes") != 0)
		return;
	while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
		struct pos at = policy_node_pos(item, keypos);
		char *s;
		int bit;

		if (policy_get_str(c, item, keypos, "a principal purpose", POLICY_VALUE_MAX, &s) != 0)
			continue;
		if ((bit = policy_purpose_bit(p, s)) < 0)
			policy_problem(c, at, "principal '%s': purpose '%s' is not in the policy's purposes",
			    pr->name != NULL ? pr->name : "?", policy_id_ok(s, POLICY_ID_MAX) ? s : "?");
		else if (strcmp(s, "match") == 0)
			/* match consent only lets a record be tokenized; exporting for it would bypass every other purpose */
			policy_problem(c, at, "principal '%s': purpose 'match' cannot be granted (it only permits matching)",
			    pr->name != NULL ? pr->name : "?");
		else if (pr->purpose_bits & (UINT32_C(1) << bit))
			policy_problem(c, at, "principal '%s': duplicate purpose '%s'", pr->name != NULL ? pr->name : "?", s);
		else
			pr->purpose_bits |= UINT32_C(1) << bit;
		free(s);
	}
	if (pr->purpose_bits == 0 && fy_node_sequence_item_count(n) == 0)
		policy_problem(c, keypos, "principal '%s' has an empty purposes list", pr->name != NULL ? pr->name : "?");
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

	at = policy_node_pos(n, fallback);
	pr->line = (size_t)at.line;
	if (policy_want_mapping(c, n, fallback, "a principal") != 0)
		return;
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		if (!policy_pair_key_is(pair, "name") || policy_key_of(c, pair, at, &k) != 0)
			continue;
		seen_name = 1;
		if (policy_get_str(c, fy_node_pair_value(pair), k.at, "principal name", POLICY_VALUE_MAX, &pr->name) != 0)
			break;
		if (!policy_id_ok(pr->name, POLICY_ID_MAX)) {
			policy_problem(c, policy_node_pos(fy_node_pair_value(pair), k.at),
			    "bad principal name (want [a-z0-9_-]{1,%d})", POLICY_ID_MAX);
			free(pr->name);
			pr->name = NULL;
		}
		break;
	}
	if (!seen_name)
		policy_problem(c, at, "principal without a name");
	name = pr->name != NULL ? pr->name : "?";
	it = NULL;
	while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *v = fy_node_pair_value(pair);

		if (policy_key_of(c, pair, at, &k) != 0)
			continue;
		if (policy_key_is(&k, "name"))
			continue;
		if (policy_key_is(&k, "role")) {
			seen_role = 1;
			if (policy_get_str(c, v, k.at, "principal role", POLICY_VALUE_MAX, &role) != 0)
				continue;
			if (strcmp(role, "partner") == 0)
				pr->role = POLICY_PRINCIPAL_PARTNER;
			else if (strcmp(role, "analyst") == 0)
				pr->role = POLICY_PRINCIPAL_ANALYST;
			else if (strcmp(role, "auditor") == 0)
				pr->role = POLICY_PRINCIPAL_AUDITOR;
			else
				policy_problem(c, policy_node_pos(v, k.at), "principal '%s': unknown role (want partner, analyst "
				    "or auditor)", name);
			free(role);
			role = NULL;
		} else if (policy_key_is(&k, "identity")) {
			seen_identity = 1;
			if (policy_get_str(c, v, k.at, "principal identity", POLICY_VALUE_MAX, &pr->identity) != 0)
				continue;
			if (!identity_ok(pr->identity)) {
				policy_problem(c, policy_node_pos(v, k.at), "principal '%s': identity must be 1 to %d printable "
				    "ASCII characters", name, POLICY_IDENTITY_MAX);
				free(pr->identity);
				pr->identity = NULL;
			}
		} else if (policy_key_is(&k, "partner")) {
			partpos = policy_node_pos(v, k.at);
			(void)policy_get_str(c, v, k.at, "principal partner", POLICY_VALUE_MAX, &pr->partner);
		} else if (policy_key_is(&k, "purposes")) {
			purposes = v;
			ppos = k.at;
		} else if (policy_key_is(&k, "row_exports")) {
			rows = v;
			rpos = k.at;
		} else if (policy_key_is(&k, "budget_rho")) {
			bpos = k.at;
			(void)policy_get_nano(c, v, k.at, "budget_rho", &pr->budget_rho_nano);
		} else if (policy_key_is(&k, "max_exports")) {
			uint64_t mx = 0;
			mpos = k.at;
			policy_get_u32_range(c, v, k.at, "max_exports", 0, 1000000, &mx);
			pr->max_exports = (uint32_t)mx;
			pr->has_max_exports = 1;
		} else {
			char where[POLICY_ID_MAX + 32];

			snprintf(where, sizeof(where), "in principal '%s'", name);
			policy_unknown_key(c, &k, where);
		}
	}
	if (!seen_role)
		policy_problem(c, at, "principal '%s' has no role", name);
	if (!seen_identity)
		policy_problem(c, at, "principal '%s' has no identity", name);
	if (pr->role == POLICY_PRINCIPAL_PARTNER) {
		if (pr->partner == NULL && partpos.line == 0)
			policy_problem(c, at, "principal '%s' (role partner) has no partner", name);
		else if (pr->partner != NULL && policy_partner_find(p, pr->partner) == NULL)
			policy_problem(c, partpos, "principal '%s': partner '%s' is not in the policy", name,
			    policy_id_ok(pr->partner, POLICY_ID_MAX) ? pr->partner : "?");
	} else if (pr->partner != NULL || partpos.line != 0)
		policy_problem(c, partpos, "principal '%s': only a principal of role partner has a partner", name);
	if (pr->role == POLICY_PRINCIPAL_ANALYST) {
		if (purposes == NULL)
			policy_problem(c, at, "principal '%s' (role analyst) has no purposes", name);
		else
			parse_principal_purposes(c, purposes, ppos, p, pr);
	} else if (purposes != NULL)
		policy_problem(c, ppos, "principal '%s': only a principal of role analyst has purposes", name);
	if (pr->role == POLICY_PRINCIPAL_ANALYST && rows != NULL) {
		struct policy_principal tmp = *pr;

		/* the same names and checks as purposes, and each must be one of them */
		tmp.purpose_bits = 0;
		parse_principal_purposes(c, rows, rpos, p, &tmp);
		pr->row_export_bits = tmp.purpose_bits;
		if (pr->row_export_bits & ~pr->purpose_bits)
			policy_problem(c, rpos, "principal '%s': row_exports lists a purpose that is not in its purposes", name);
	} else if (rows != NULL)
		policy_problem(c, rpos, "principal '%s': only a principal of role analyst has row_exports", name);
	if (pr->role != POLICY_PRINCIPAL_ANALYST && (bpos.line != 0 || mpos.line != 0))
		policy_problem(c, bpos.line != 0 ? bpos : mpos, "principal '%s': only a principal of role analyst has "
		    "budget_rho or max_exports", name);
}

void
policy_parse_principals(struct pctx *c, struct fy_node *n, struct pos keypos, struct policy *p)
{
	struct fy_node *item;
	void *it = NULL, *arr;
	char too_many[64];
	size_t j;

	snprintf(too_many, sizeof(too_many), "more than %d principals", POLICY_PRINCIPALS_MAX);
	if (policy_items_alloc(c, n, keypos, "principals", POLICY_PRINCIPALS_MAX, too_many, sizeof(*p->principals), &arr) == 0)
		return;
	p->principals = arr;
	while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
		struct policy_principal *pr = &p->principals[p->nprincipals++];

		parse_principal(c, item, keypos, p, pr);
		for (j = 0; j + 1 < p->nprincipals; j++) {
			const struct policy_principal *o = &p->principals[j];

			if (pr->name != NULL && o->name != NULL && strcmp(o->name, pr->name) == 0)
				policy_problem(c, policy_node_pos(item, keypos), "duplicate principal name '%s'", pr->name);
			/* One identity, one principal: otherwise a certificate's rights would be ambiguous. */
			if (pr->identity != NULL && o->identity != NULL && strcmp(o->identity, pr->identity) == 0)
				policy_problem(c, policy_node_pos(item, keypos), "principal '%s' has the same identity as "
				    "principal '%s'", pr->name != NULL ? pr->name : "?",
				    o->name != NULL ? o->name : "?");
		}
	}
}

