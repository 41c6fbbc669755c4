/* test_policy_network.c - the policy's network section and principals */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgtest.h"
#include "policy/policy.h"

static const char base[] =
	"version: 1\n"
	"name: t\n"
	"default_phone_country: CN\n"
	"purposes: [match, analytics, marketing]\n"
	"partners:\n"
	"  - id: k\n"
	"    name: K\n"
	"    signing_key: \"ed25519-public e2eb4e5f22d61b04 Sn8atP5J/t5pucoXnIxM2XgJGnYICHhBZvvpnhg8epo=\"\n"
	"    columns:\n"
	"      - {name: email, type: string, role: identifier, kind: email}\n"
	"      - {name: consent, type: purposes, role: consent}\n"
	"      - {name: consent_at, type: timestamp, role: consent_time}\n";

static struct policy *
parse(const char *extra, struct cg_err *err)
{
	static char buf[8192];
	struct policy *p = NULL;

	snprintf(buf, sizeof(buf), "%s%s", base, extra);
	if (policy_parse("/etc/crossgate/p.yaml", buf, strlen(buf), &p, NULL, err) != 0)
		return NULL;
	return p;
}

/* The first problem of a policy that must be refused. */
static const char *
refused(const char *extra)
{
	static struct cg_err err;
	struct policy *p = parse(extra, &err);

	if (p != NULL) {
		policy_free(p);
		return "(accepted)";
	}
	return err.msg;
}

int
main(void)
{
	struct policy *p;
	struct cg_err err;
	const struct policy_principal *pr;

	/* no network section: defaults, nothing present */
	p = parse("", &err);
	CHECK(p != NULL);
	if (p != NULL) {
		CHECK_EQ_INT(p->net.present, 0);
		CHECK_EQ_INT(p->net.frame_max, POLICY_NET_FRAME_MAX_DEFAULT);
		CHECK_EQ_INT(p->net.preauth_frame_max, POLICY_NET_PREAUTH_FRAME_MAX_DEFAULT);
		CHECK_EQ_INT(p->net.max_connections, 64);
		CHECK_EQ_INT(p->net.handshake_timeout, 5);
		CHECK_EQ_INT(p->nprincipals, 0);
		policy_free(p);
	}

	/* a full section */
	p = parse("network:\n"
	    "  ca: pki/ca.pem\n"
	    "  listen: \"127.0.0.1:7443\"\n"
	    "  limits: {frame_max: 200000, preauth_frame_max: 4096, max_connections: 8, handshake_timeout: 2,\n"
	    "           read_timeout: 3, idle_timeout: 4, push_max_bytes: 100000}\n"
	    "  heartbeat_interval: 5\n"
	    "principals:\n"
	    "  - {name: k-agent, role: partner, identity: \"crossgate:partner:k\", partner: k}\n"
	    "  - {name: ana, role: analyst, identity: \"CN with spaces\", purposes: [marketing]}\n"
	    "  - {name: aud, role: auditor, identity: \"crossgate:auditor:aud\"}\n", &err);
	CHECK(p != NULL);
	if (p == NULL)
		fprintf(stderr, "%s\n", err.msg);
	if (p != NULL) {
		CHECK_EQ_INT(p->net.present, 1);
		CHECK_STR(p->net.ca, "pki/ca.pem");
		CHECK_STR(p->net.ca_path, "/etc/crossgate/pki/ca.pem");
		CHECK_STR(p->net.listen, "127.0.0.1:7443");
		CHECK_EQ_INT(p->net.frame_max, 200000);
		CHECK_EQ_INT(p->net.preauth_frame_max, 4096);
		CHECK_EQ_INT(p->net.max_connections, 8);
		CHECK_EQ_INT(p->net.handshake_timeout, 2);
		/* pre-auth admission derived from max_connections: half for handshakes, the rest for principals */
		CHECK_EQ_INT(p->net.startups_full, 4);
		CHECK_EQ_INT(p->net.startups_start, 2);
		CHECK_EQ_INT(p->net.startups_rate, 30);
		CHECK_EQ_INT(p->net.per_source_max, 4);
		CHECK_EQ_INT(p->net.penalty_max, POLICY_NET_PENALTY_MAX_DEFAULT);
		CHECK_EQ_INT(p->net.read_timeout, 3);
		CHECK_EQ_INT(p->net.idle_timeout, 4);
		CHECK_EQ_INT(p->net.push_max_bytes, 100000);
		CHECK_EQ_INT(p->net.heartbeat_interval, 5);
		CHECK_EQ_INT(p->nprincipals, 3);
		pr = policy_principal_find(p, "crossgate:partner:k");
		CHECK(pr != NULL && pr->role == POLICY_PRINCIPAL_PARTNER);
		CHECK_STR(pr != NULL ? pr->partner : NULL, "k");
		CHECK_STR(pr != NULL ? policy_role_name(pr->role) : NULL, "partner");
		CHECK(policy_principal_find(p, "crossgate:partner:K") == NULL);
		CHECK(policy_principal_find(p, "crossgate:partner:k ") == NULL);
		pr = policy_principal_find(p, "CN with spaces");
		CHECK(pr != NULL && pr->role == POLICY_PRINCIPAL_ANALYST);
		CHECK(policy_principal_may_export(p, pr, "marketing"));
		CHECK(!policy_principal_may_export(p, pr, "analytics"));
		CHECK(!policy_principal_may_export(p, pr, "match"));
		CHECK(!policy_principal_may_export(p, pr, "unknown"));
		/* an auditor or a partner exports nothing */
		CHECK(!policy_principal_may_export(p, policy_principal_find(p, "crossgate:auditor:aud"), "marketing"));
		CHECK(!policy_principal_may_export(p, policy_principal_find(p, "crossgate:partner:k"), "marketing"));
		policy_free(p);
	}

	/* admission written out; 0 turns the per-source limit and the penalties off */
	p = parse("network: {ca: c.pem, listen: \"h:1\", limits: {max_connections: 100, max_startups: \"10:50:60\",\n"
	    "  per_source_max: 0, penalty_max: 0}}\n", &err);
	CHECK(p != NULL);
	if (p != NULL) {
		CHECK_EQ_INT(p->net.startups_start, 10);
		CHECK_EQ_INT(p->net.startups_rate, 50);
		CHECK_EQ_INT(p->net.startups_full, 60);
		CHECK_EQ_INT(p->net.per_source_max, 0);
		CHECK_EQ_INT(p->net.penalty_max, 0);
		policy_free(p);
	}
	/* trusted networks: their own pre-auth slots, min(8, (max_connections - full) / 2) by default */
	p = parse("network: {ca: c.pem, listen: \"h:1\", limits: {trusted_sources: [\"192.0.2.7\", \"198.51.100.0/24\",\n"
	    "  \"2001:db8:1::/48\"]}}\n", &err);
	CHECK(p != NULL);
	if (p != NULL) {
		static const unsigned char v4[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 0 };

		CHECK_EQ_INT((int)p->net.ntrusted, 3);
		CHECK_EQ_INT(p->net.trusted[0].bits, 128);
		CHECK_EQ_INT(p->net.trusted[1].bits, 120);
		CHECK(memcmp(p->net.trusted[1].b, v4, 16) == 0);
		CHECK_EQ_INT(p->net.trusted[2].bits, 48);
		CHECK(p->net.trusted[2].b[0] == 0x20 && p->net.trusted[2].b[1] == 0x01 && p->net.trusted[2].b[5] == 1);
		CHECK_EQ_INT(p->net.trusted_startups, 8);
		policy_free(p);
	}
	p = parse("network: {ca: c.pem, listen: \"h:1\", limits: {max_connections: 10, trusted_sources: [\"10.0.0.0/8\"]}}\n",
	    &err);
	CHECK(p != NULL);
	if (p != NULL) {
		CHECK_EQ_INT(p->net.trusted_startups, 2);        /* (10 - 5) / 2 */
		policy_free(p);
	}
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", limits: {trusted_sources: [\"10.0.0.1/8\"]}}\n"),
	    "trusted source \"10.0.0.1/8\" has address bits set past its prefix");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", limits: {trusted_sources: [\"10.0.0.0/33\"]}}\n"),
	    "trusted source \"10.0.0.0/33\" has a prefix that is not /0 to /32");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", limits: {trusted_sources: [\"2001:db8::/96\"]}}\n"),
	    "is an IPv6 prefix longer than /64 (sources are counted per /64)");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", limits: {trusted_sources: [\"partner.example\"]}}\n"),
	    "trusted source \"?\" is not an IPv4 or IPv6 address");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", limits: {trusted_sources: [\"10.0.0.0/\"]}}\n"),
	    "has a prefix that is not /0 to /32");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", limits: {trusted_startups: 4}}\n"),
	    "trusted_startups without trusted_sources");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", limits: {trusted_sources: [\"10.0.0.0/8\"], "
	    "trusted_startups: 32}}\n"), "max_startups full (32) + trusted_startups (32) must be below max_connections (64)");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", limits: {trusted_sources: \"10.0.0.0/8\"}}\n"),
	    "trusted_sources");

	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", limits: {max_startups: \"10:30\"}}\n"),
	    "max_startups must be \"START:RATE:FULL\" with 0 < START <= FULL and RATE <= 100");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", limits: {max_startups: \"10:130:20\"}}\n"),
	    "max_startups must be");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", limits: {max_startups: \"30:30:20\"}}\n"),
	    "max_startups must be");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", limits: {max_connections: 8, "
	    "max_startups: \"2:30:8\"}}\n"), "max_startups full (8) must be below max_connections (8), so that "
	    "slots stay reserved for authenticated principals");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", limits: {penalty_max: 100000}}\n"),
	    "penalty_max must be between 0 and 86400");

	/* refusals, each with its line and column */
	CHECK_CONTAINS(refused("network: {listen: \"127.0.0.1:1\"}\n"),
	    "p.yaml:13:1: network has no ca");
	CHECK_CONTAINS(refused("network: {ca: c.pem}\n"), "network has no listen address");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"localhost\"}\n"),
	    "p.yaml:13:31: network listen must be HOST:PORT");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:70000\"}\n"), "network listen must be HOST:PORT");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"[::1]:7443\", limits: {frame_max: 10}}\n"),
	    "frame_max must be between 65600 and 16777216");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", limits: {preauth_frame_max: 100}}\n"),
	    "preauth_frame_max must be between 256 and");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", limits: {frame_max: 70000, "
	    "preauth_frame_max: 100000}}\n"), "preauth_frame_max (100000) is larger than frame_max (70000)");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", limits: {max_connections: 0}}\n"),
	    "max_connections must be between 1 and 4096");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", limits: {idle_timeout: -1}}\n"),
	    "idle_timeout must be between 1 and 3600");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", limits: {read_timeout: x}}\n"),
	    "read_timeout is not an integer");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", limits: {slow: 1}}\n"),
	    "unknown key 'slow' in network limits");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", tls: 1}\n"), "unknown key 'tls' in network");
	CHECK_CONTAINS(refused("network: {ca: c.pem, listen: \"h:1\", heartbeat_interval: 0}\n"),
	    "heartbeat_interval must be between 1 and 86400");
	CHECK_CONTAINS(refused("principals:\n  - {name: a, role: admin, identity: x}\n"),
	    "p.yaml:14:21: principal 'a': unknown role (want partner, analyst or auditor)");
	CHECK_CONTAINS(refused("principals:\n  - {name: a, role: partner, identity: x}\n"),
	    "principal 'a' (role partner) has no partner");
	CHECK_CONTAINS(refused("principals:\n  - {name: a, role: partner, identity: x, partner: z}\n"),
	    "principal 'a': partner 'z' is not in the policy");
	CHECK_CONTAINS(refused("principals:\n  - {name: a, role: analyst, identity: x}\n"),
	    "principal 'a' (role analyst) has no purposes");
	CHECK_CONTAINS(refused("principals:\n  - {name: a, role: analyst, identity: x, purposes: [match]}\n"),
	    "principal 'a': purpose 'match' cannot be granted (it only permits matching)");
	CHECK_CONTAINS(refused("principals:\n  - {name: a, role: analyst, identity: x, purposes: [spying]}\n"),
	    "principal 'a': purpose 'spying' is not in the policy's purposes");
	CHECK_CONTAINS(refused("principals:\n  - {name: a, role: analyst, identity: x, purposes: []}\n"),
	    "principal 'a' has an empty purposes list");
	CHECK_CONTAINS(refused("principals:\n  - {name: a, role: auditor, identity: x, purposes: [analytics]}\n"),
	    "principal 'a': only a principal of role analyst has purposes");
	CHECK_CONTAINS(refused("principals:\n  - {name: a, role: auditor, identity: x, partner: k}\n"),
	    "principal 'a': only a principal of role partner has a partner");
	CHECK_CONTAINS(refused("principals:\n  - {name: a, role: auditor}\n"), "principal 'a' has no identity");
	CHECK_CONTAINS(refused("principals:\n  - {role: auditor, identity: x}\n"), "principal without a name");
	CHECK_CONTAINS(refused("principals:\n  - {name: A!, role: auditor, identity: x}\n"), "bad principal name");
	CHECK_CONTAINS(refused("principals:\n  - {name: a, role: auditor, identity: \"tab\\there\"}\n"),
	    "principal 'a': identity must be 1 to 256 printable ASCII characters");
	CHECK_CONTAINS(refused("principals:\n  - {name: a, role: auditor, identity: x}\n"
	    "  - {name: b, role: auditor, identity: x}\n"),
	    "p.yaml:15:6: principal 'b' has the same identity as principal 'a'");
	CHECK_CONTAINS(refused("principals:\n  - {name: a, role: auditor, identity: x}\n"
	    "  - {name: a, role: auditor, identity: y}\n"), "duplicate principal name 'a'");
	CHECK_CONTAINS(refused("principals:\n  - {name: a, role: auditor, identity: x, colour: red}\n"),
	    "unknown key 'colour' in principal 'a'");
	CHECK_CONTAINS(refused("principals: {a: 1}\n"), "principals must be a list");

	/* the example policy (the demo's template) has both sections */
	{
		struct policy_problems pb = { 0 };

		p = NULL;
		CHECK_EQ_INT(policy_load("policy/example.yaml", &p, &pb, &err), 0);
		if (p != NULL) {
			CHECK_EQ_INT(p->net.present, 1);
			CHECK_STR(p->net.ca_path, "policy/pki/ca.pem");
			CHECK_EQ_INT(p->nprincipals, 4);
			CHECK(policy_principal_may_export(p, policy_principal_find(p, "crossgate:analyst:analyst"),
			    "analytics"));
			policy_free(p);
		}
		policy_problems_free(&pb);
	}
	CGT_DONE();
}
