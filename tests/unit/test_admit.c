/* test_admit.c - pre-auth admission: limits, random early drop, penalties, log limit */
#include "cgtest.h"
#include "gateway/admit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>

static struct admit_source
v4(const char *ip, char text[ADMIT_ADDR_MAX])
{
	struct sockaddr_in in;
	struct admit_source s;

	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_port = htons(4242);
	inet_pton(AF_INET, ip, &in.sin_addr);
	admit_source_of((struct sockaddr *)&in, sizeof(in), &s, text);
	return s;
}

/* The i-th of many sources (10.x.y.z), in a static: callers pass its address at once. */
static const struct admit_source *
nth(unsigned i)
{
	static struct admit_source s;
	char ip[32], text[ADMIT_ADDR_MAX];

	snprintf(ip, sizeof(ip), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
	s = v4(ip, text);
	return &s;
}

static struct admit *
make(uint32_t max, uint32_t start, uint32_t rate, uint32_t full, uint32_t per_source, uint32_t penalty_max)
{
	struct admit_config c = { max, start, rate, full, per_source, penalty_max, 60, 0, 0, { { { 0 }, 0 } } };
	struct admit *a = NULL;
	struct cg_err err;

	if (admit_new(&c, &a, &err) != 0)
		fprintf(stderr, "admit_new: %s\n", err.msg);
	return a;
}

int
main(void)
{
	struct admit *a;
	struct admit_source s1, s2, s6a, s6b;
	struct sockaddr_in6 in6;
	struct cg_err err;
	struct admit_config bad = { 8, 4, 30, 9, 0, 0, 60, 0, 0, { { { 0 }, 0 } } };
	char text[ADMIT_ADDR_MAX];
	uint64_t supp;
	unsigned i, drops;
	int64_t t = 1000000;

	if (sodium_init() < 0)
		return 1;
	CHECK(admit_new(&bad, &a, &err) == CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "need start <= full <= max_connections");

	/* sources: an IPv4 address with its port for logs; an IPv6 /64 is one source */
	s1 = v4("192.0.2.7", text);
	CHECK_STR(text, "192.0.2.7:4242");
	memset(&in6, 0, sizeof(in6));
	in6.sin6_family = AF_INET6;
	in6.sin6_port = htons(443);
	inet_pton(AF_INET6, "2001:db8:1:2::1", &in6.sin6_addr);
	admit_source_of((struct sockaddr *)&in6, sizeof(in6), &s6a, text);
	CHECK_STR(text, "[2001:db8:1:2::1]:443");
	inet_pton(AF_INET6, "2001:db8:1:2:ffff::9", &in6.sin6_addr);
	admit_source_of((struct sockaddr *)&in6, sizeof(in6), &s6b, text);
	CHECK(memcmp(s6a.b, s6b.b, 16) == 0);
	inet_pton(AF_INET6, "2001:db8:1:3::1", &in6.sin6_addr);
	admit_source_of((struct sockaddr *)&in6, sizeof(in6), &s6b, text);
	CHECK(memcmp(s6a.b, s6b.b, 16) != 0);
	admit_source_of(NULL, 0, &s6b, text);
	CHECK_STR(text, "?");

	/* per-source limit: the 9th pre-auth connection of one source is refused, another source is not */
	a = make(64, 16, 30, 32, 8, 0);
	CHECK(a != NULL);
	s2 = v4("198.51.100.1", text);
	for (i = 0; i < 8; i++)
		CHECK_EQ_INT(admit_check(a, &s1, t, UINT32_MAX), ADMIT_OK);
	CHECK_EQ_INT(admit_check(a, &s1, t, UINT32_MAX), ADMIT_SOURCE);
	CHECK_EQ_INT(admit_check(a, &s2, t, UINT32_MAX), ADMIT_OK);
	CHECK_EQ_INT(admit_preauth(a), 9);
	/* one authenticates: its source may start another */
	admit_authenticated(a, &s1);
	CHECK_EQ_INT(admit_preauth(a), 8);
	CHECK_EQ_INT(admit_authed(a), 1);
	CHECK_EQ_INT(admit_check(a, &s1, t, UINT32_MAX), ADMIT_OK);
	for (i = 0; i < 8; i++)
		admit_release(a, &s1, 0);
	admit_release(a, &s1, 1);
	admit_release(a, &s2, 0);
	CHECK_EQ_INT(admit_preauth(a), 0);
	CHECK_EQ_INT(admit_authed(a), 0);
	admit_free(a);

	/* reserved slots: at `full` pre-auth connections nobody new may start, yet principals keep the rest */
	a = make(8, 2, 30, 4, 0, 0);
	for (i = 0; i < 4; i++)
		CHECK_EQ_INT(admit_check(a, &s1, t, UINT32_MAX), ADMIT_OK);   /* UINT32_MAX: never an early drop */
	CHECK_EQ_INT(admit_check(a, &s2, t, UINT32_MAX), ADMIT_STARTUPS);
	for (i = 0; i < 4; i++)
		admit_authenticated(a, &s1);
	for (i = 0; i < 4; i++)
		CHECK_EQ_INT(admit_check(a, &s2, t, UINT32_MAX), ADMIT_OK);
	CHECK_EQ_INT(admit_check(a, &s2, t, UINT32_MAX), ADMIT_BUSY);    /* 4 + 4 = max_connections */
	admit_free(a);

	/* random early drop: at start the drop rate is `rate`, halfway to full it is rate + (100-rate)/2 */
	a = make(200, 10, 30, 110, 0, 0);
	for (i = 0; i < 10; i++)
		CHECK_EQ_INT(admit_check(a, nth(i), t, 0), ADMIT_OK);        /* below start: nothing dropped */
	for (i = drops = 0; i < 20000; i++) {
		if (admit_check(a, &s2, t, randombytes_random()) != ADMIT_OK)
			drops++;
		else
			admit_release(a, &s2, 0);
	}
	/* binomial(20000, 0.30): sd 0.0032; 5 sd either side */
	CHECK(drops > 20000 * 0.284 && drops < 20000 * 0.316);
	for (i = 10; i < 60; i++)
		CHECK_EQ_INT(admit_check(a, nth(i), t, UINT32_MAX), ADMIT_OK);
	for (i = drops = 0; i < 20000; i++) {
		if (admit_check(a, &s2, t, randombytes_random()) != ADMIT_OK)
			drops++;
		else
			admit_release(a, &s2, 0);
	}
	CHECK(drops > 20000 * 0.634 && drops < 20000 * 0.666);            /* p = 0.65, sd 0.0034 */
	admit_free(a);

	/* penalties: two timed-out handshakes (10 s each) reach the 15 s minimum; the source is refused until
	 * they expire, other sources are not */
	a = make(64, 16, 30, 32, 8, 600);
	admit_penalise(a, &s1, ADMIT_OFF_TIMEOUT, t);
	CHECK_EQ_INT(admit_check(a, &s1, t, UINT32_MAX), ADMIT_OK);        /* 10 s: under the minimum */
	admit_release(a, &s1, 0);
	admit_penalise(a, &s1, ADMIT_OFF_TIMEOUT, t + 1000);
	CHECK_EQ_INT(admit_penalty_left(a, &s1, t + 1000), 19);
	CHECK_EQ_INT(admit_check(a, &s1, t + 1000, UINT32_MAX), ADMIT_PENALTY);
	CHECK_EQ_INT(admit_penalty_left(a, &s1, t + 1000), 20);          /* knocking while penalised: +1 s */
	CHECK_EQ_INT(admit_check(a, &s2, t + 1000, UINT32_MAX), ADMIT_OK);
	admit_release(a, &s2, 0);
	CHECK_EQ_INT(admit_check(a, &s1, t + 21000, UINT32_MAX), ADMIT_OK);
	admit_release(a, &s1, 0);
	/* a repeat offender: the next penalty lasts at least 30 s, the one after 60 s */
	admit_penalise(a, &s1, ADMIT_OFF_TIMEOUT, t + 30000);
	admit_penalise(a, &s1, ADMIT_OFF_TIMEOUT, t + 30000);
	CHECK_EQ_INT(admit_penalty_left(a, &s1, t + 30000), 30);
	admit_penalise(a, &s1, ADMIT_OFF_TIMEOUT, t + 70000);
	admit_penalise(a, &s1, ADMIT_OFF_TIMEOUT, t + 70000);
	CHECK_EQ_INT(admit_penalty_left(a, &s1, t + 70000), 60);
	CHECK_EQ_INT(admit_check(a, &s1, t + 129000, UINT32_MAX), ADMIT_PENALTY);
	/* a flood over the per-source limit penalises itself: 1 s for each refusal, refused from 15 s on, and
	 * every connection while refused adds its second, up to penalty_max */
	for (i = 0; i < 8; i++)
		CHECK_EQ_INT(admit_check(a, &s2, t, UINT32_MAX), ADMIT_OK);
	for (i = 0; i < 2000; i++)
		(void)admit_check(a, &s2, t, UINT32_MAX);
	CHECK_EQ_INT(admit_check(a, &s2, t, UINT32_MAX), ADMIT_PENALTY);
	CHECK_EQ_INT(admit_penalty_left(a, &s2, t), 600);
	admit_free(a);

	/* penalty_max 0: no penalties at all */
	a = make(64, 16, 30, 32, 8, 0);
	for (i = 0; i < 10; i++)
		admit_penalise(a, &s1, ADMIT_OFF_TIMEOUT, t);
	CHECK_EQ_INT(admit_check(a, &s1, t, UINT32_MAX), ADMIT_OK);
	admit_free(a);

	/* more penalised sources than the table holds: the rest are admitted under the global limits only */
	a = make(64, 16, 30, 32, 8, 600);
	for (i = 0; i < ADMIT_SOURCES; i++) {
		admit_penalise(a, nth(i), ADMIT_OFF_TIMEOUT, t);
		admit_penalise(a, nth(i), ADMIT_OFF_TIMEOUT, t);
	}
	CHECK_EQ_INT(admit_check(a, nth(0), t, UINT32_MAX), ADMIT_PENALTY);
	CHECK_EQ_INT(admit_check(a, nth(ADMIT_SOURCES - 1), t, UINT32_MAX), ADMIT_OK);
	/* penalised sources are remembered for penalty_max after their penalty: still no room at first */
	for (i = 0; i < 9; i++)
		CHECK_EQ_INT(admit_check(a, &s2, t + 30000, UINT32_MAX), ADMIT_OK);
	for (i = 0; i < 9; i++)
		admit_release(a, &s2, 0);
	/* then the sweep makes room again, and s2 has its per-source limit */
	for (i = 0; i < 8; i++)
		CHECK_EQ_INT(admit_check(a, &s2, t + 630000, UINT32_MAX), ADMIT_OK);
	CHECK_EQ_INT(admit_check(a, &s2, t + 630000, UINT32_MAX), ADMIT_SOURCE);
	admit_free(a);

	/* trusted networks: 192.0.2.0/24 and 2001:db8:1::/48, 4 slots of their own */
	{
		struct admit_config c = { 64, 16, 30, 32, 8, 600, 60, 4, 2, { { { 0 }, 0 } } };
		struct admit_source t1 = v4("192.0.2.200", text), t2 = v4("192.0.3.1", text);

		c.trusted[0].b[10] = c.trusted[0].b[11] = 0xff;
		inet_pton(AF_INET, "192.0.2.0", c.trusted[0].b + 12);
		c.trusted[0].bits = 96 + 24;
		inet_pton(AF_INET6, "2001:db8:1::", c.trusted[1].b);
		c.trusted[1].bits = 48;
		CHECK_EQ_INT(admit_new(&c, &a, &err), 0);
		CHECK(admit_trusted(a, &s1) && admit_trusted(a, &t1) && admit_trusted(a, &s6a));
		CHECK(!admit_trusted(a, &t2) && !admit_trusted(a, nth(5)));
		/* a flood from 32 sources takes every common slot ... */
		for (i = 0; i < 32 * 8; i++)
			(void)admit_check(a, nth(i % 32), t, UINT32_MAX);
		CHECK_EQ_INT(admit_preauth(a), 32);
		CHECK_EQ_INT(admit_check(a, &t2, t, 0), ADMIT_STARTUPS);
		/* ... not the trusted ones: 4 of them, then a trusted source competes like anyone */
		for (i = 0; i < 4; i++)
			CHECK_EQ_INT(admit_check(a, i % 2 ? &s1 : &s6a, t, 0), ADMIT_OK);
		CHECK_EQ_INT(admit_preauth_trusted(a), 4);
		CHECK_EQ_INT(admit_check(a, &t1, t, 0), ADMIT_STARTUPS);
		/* a trusted slot given back is a trusted slot again */
		admit_authenticated(a, &s1);
		CHECK_EQ_INT(admit_preauth_trusted(a), 3);
		CHECK_EQ_INT(admit_check(a, &t1, t, 0), ADMIT_OK);
		/* the per-source limit and penalties still hold for a trusted source */
		admit_penalise(a, &t1, ADMIT_OFF_TIMEOUT, t);
		admit_penalise(a, &t1, ADMIT_OFF_TIMEOUT, t);
		admit_release(a, &t1, 0);
		CHECK_EQ_INT(admit_check(a, &t1, t, 0), ADMIT_PENALTY);
		/* everything ends: the counts are back to zero */
		admit_release(a, &s1, 1);
		admit_release(a, &s1, 0);
		admit_release(a, &s6a, 0);
		admit_release(a, &s6a, 0);
		for (i = 0; i < 32 * 8; i++)
			admit_release(a, nth(i % 32), 0);
		CHECK_EQ_INT(admit_preauth(a), 0);
		CHECK_EQ_INT(admit_preauth_trusted(a), 0);
		CHECK_EQ_INT(admit_authed(a), 0);
		admit_free(a);
		/* the trusted slots come out of the authenticated principals' share, never all of it */
		c.trusted_startups = 33;
		CHECK_EQ_INT(admit_new(&c, &a, &err), CG_ERR_ARG);
		CHECK_CONTAINS(err.msg, "full (32) + trusted_startups (33) exceed max_connections (64)");
	}

	/* refusal log lines: 60 a minute, the rest counted into the next minute's first line */
	a = make(64, 16, 30, 32, 8, 600);
	for (i = 0; i < 60; i++)
		CHECK(admit_log_ok(a, t, &supp) && supp == 0);
	for (i = 0; i < 500; i++)
		CHECK(!admit_log_ok(a, t + 1000, &supp));
	CHECK(admit_log_ok(a, t + 60000, &supp));
	CHECK_EQ_INT(supp, 500);
	CHECK(admit_log_ok(a, t + 60001, &supp) && supp == 0);
	admit_free(a);
	/*
	 * Any 60 s, not calendar minutes: 60 lines at the end of one minute
	 * leave none for the start of the next: 60 lines 0.1 s before a
	 * minute starts, none for the 59.9 s after, then one as each ages out.
	 */
	a = make(64, 16, 30, 32, 8, 600);
	{
		int64_t m0 = 60000 * 1000;
		unsigned logged = 0;
		for (i = 0; i < 60; i++)
			logged += (unsigned)admit_log_ok(a, m0 - 100, &supp);
		CHECK_EQ_INT(logged, 60);
		for (i = 0, logged = 0; i < 200; i++)
			logged += (unsigned)admit_log_ok(a, m0 + 100 + i * 100, &supp);
		CHECK_EQ_INT(logged, 0);        /* 0.2 s to 20.1 s after them: within 60 s */
		CHECK(admit_log_ok(a, m0 + 59900, &supp));
		CHECK_EQ_INT(supp, 200);
		CHECK(admit_log_ok(a, m0 + 59900, &supp) && supp == 0);
	}
	admit_free(a);
	CGT_DONE();
}
