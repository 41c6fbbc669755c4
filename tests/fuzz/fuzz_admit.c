/*
 * fuzz_admit.c - libFuzzer harness for gateway/admit.c, driven as a model:
 * the input is a configuration and a sequence of operations (connections
 * from a handful of sources arriving, authenticating, ending, offending,
 * time passing).  Against a model of the counts it checks that admission
 * never lets all connections exceed max_connections nor pre-auth ones
 * exceed `full` or a source's per_source limit, that a source with more
 * than ADMIT_PENALTY_MIN seconds of penalty left is never admitted, that a
 * penalty never exceeds penalty_max, that the trusted slots go to trusted
 * sources only and stay within trusted_startups, and that the counts return
 * to zero when all end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>

#include "gateway/admit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSRC 6
#define NCONN 256

struct conn {
	int live, authed, src;
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct admit_config cfg;
	struct admit_source src[NSRC];
	struct admit *a = NULL;
	struct conn c[NCONN];
	struct cg_err err;
	uint32_t pre_of[NSRC] = { 0 }, pre = 0, auth = 0;
	int64_t now = 1000000;
	size_t i;
	int k;

	if (size < 6 || sodium_init() < 0)
		return 0;
	memset(&cfg, 0, sizeof(cfg));
	cfg.max_connections = 1 + data[0] % 64;
	cfg.full = 1 + data[1] % cfg.max_connections;
	cfg.start = 1 + data[2] % cfg.full;
	cfg.rate = data[3] % 101;
	cfg.per_source = data[4] % 10;
	cfg.penalty_max = (data[5] & 1) ? 0 : 30 + data[5];
	cfg.log_per_min = 3;
	if ((data[4] & 0x40) && cfg.max_connections > cfg.full) {
		/* 10.0.0.0/30 trusted: sources 0, 1 and 2 (10.0.0.1 to .3) */
		cfg.trusted_startups = 1 + data[4] % (cfg.max_connections - cfg.full);
		cfg.ntrusted = 1;
		cfg.trusted[0].b[10] = cfg.trusted[0].b[11] = 0xff;
		cfg.trusted[0].b[12] = 10;
		cfg.trusted[0].bits = 96 + 30;
	}
	if (admit_new(&cfg, &a, &err) != 0)
		abort();
	for (k = 0; k < NSRC; k++) {
		struct sockaddr_in in;
		char text[ADMIT_ADDR_MAX];

		memset(&in, 0, sizeof(in));
		in.sin_family = AF_INET;
		in.sin_addr.s_addr = htonl(0x0a000001u + (uint32_t)k);
		admit_source_of((struct sockaddr *)&in, sizeof(in), &src[k], text);
	}
	memset(c, 0, sizeof(c));
	for (i = 6; i + 1 < size; i += 2) {
		uint8_t op = data[i] & 7, arg = data[i + 1];
		struct conn *x = &c[arg % NCONN];
		int s = arg % NSRC;
		uint64_t supp;

		switch (op) {
		case 0: case 1: {                            /* a connection arrives */
			uint32_t left;
			enum admit_verdict v;
			size_t j;

			uint32_t tpre = admit_preauth_trusted(a);

			left = admit_penalty_left(a, &src[s], now);
			v = admit_check(a, &src[s], now, (uint32_t)arg * 16843009u);
			if (v == ADMIT_OK) {
				/* the common slots stay within full, the trusted ones within trusted_startups
				 * and only for the trusted sources */
				if (pre + auth + 1 > cfg.max_connections || admit_preauth(a) > cfg.full ||
				    admit_preauth_trusted(a) > cfg.trusted_startups ||
				    (admit_preauth_trusted(a) > tpre && (cfg.ntrusted == 0 || s > 2)) ||
				    (cfg.per_source && pre_of[s] + 1 > cfg.per_source) || left > ADMIT_PENALTY_MIN)
					abort();
				for (j = 0; j < NCONN && c[j].live; j++)
					;
				if (j == NCONN) {
					admit_release(a, &src[s], 0);
					break;
				}
				c[j].live = 1;
				c[j].authed = 0;
				c[j].src = s;
				pre++;
				pre_of[s]++;
			} else if (v == ADMIT_BUSY && pre + auth < cfg.max_connections)
				abort();
			else if (v == ADMIT_PENALTY && (cfg.penalty_max == 0 || left == 0))
				abort();
			break;
		}
		case 2:                                      /* it proves a principal */
			if (x->live && !x->authed) {
				admit_authenticated(a, &src[x->src]);
				x->authed = 1;
				pre--;
				pre_of[x->src]--;
				auth++;
			}
			break;
		case 3:                                      /* it ends */
			if (x->live) {
				admit_release(a, &src[x->src], x->authed);
				if (x->authed)
					auth--;
				else {
					pre--;
					pre_of[x->src]--;
				}
				x->live = 0;
			}
			break;
		case 4:                                      /* its source offends */
			admit_penalise(a, &src[s], (enum admit_offence)(arg % 3), now);
			if (cfg.penalty_max > 0 && admit_penalty_left(a, &src[s], now) > cfg.penalty_max)
				abort();
			break;
		case 5:                                      /* time passes */
			now += (int64_t)arg * 250;
			break;
		default:
			(void)admit_log_ok(a, now, &supp);
			break;
		}
		if (admit_preauth(a) + admit_preauth_trusted(a) != pre || admit_authed(a) != auth)
			abort();
	}
	for (k = 0; k < NCONN; k++)
		if (c[k].live)
			admit_release(a, &src[c[k].src], c[k].authed);
	if (admit_preauth(a) != 0 || admit_preauth_trusted(a) != 0 || admit_authed(a) != 0)
		abort();
	admit_free(a);
	return 0;
}
