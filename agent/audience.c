/* audience.c - see audience.h */
#include "agent/audience.h"

#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "base/outfile.h"
#include "crypto/delivery.h"

struct agent_audience_out {
	FILE *f;
	uint64_t users;
};

/* One CSV cell: quoted when it holds a separator, a quote or a line break (RFC 4180). */
static int
agent_audience_user(void *ctx, const char *id, size_t len, struct cg_err *err)
{
	struct agent_audience_out *o = ctx;
	size_t i;
	int quote = 0;

	(void)err;
	for (i = 0; i < len; i++)
		if (id[i] == ',' || id[i] == '"' || id[i] == '\n' || id[i] == '\r')
			quote = 1;
	if (quote) {
		fputc('"', o->f);
		for (i = 0; i < len; i++) {
			if (id[i] == '"')
				fputc('"', o->f);
			fputc(id[i], o->f);
		}
		fputs("\"\n", o->f);
	} else {
		fwrite(id, 1, len, o->f);
		fputc('\n', o->f);
	}
	o->users++;
	return 0;
}

int
agent_audience_write(const unsigned char *sealed, size_t len, const struct keyfile_key *sign_key, const char *partner,
    struct agent_state *state, const char *out_csv, struct agent_audience_stats *st, struct cg_err *err)
{
	struct agent_audience_out o = { NULL, 0 };
	struct outfile of = { 0 };
	struct delivery d;
	size_t i;
	int r;

	memset(st, 0, sizeof(*st));
	if (sign_key->type != KEYFILE_ED25519_SECRET || sign_key->key_len != 64)
		return cg_err_set(err, CG_ERR_ARG, "the partner's signing key (ed25519-secret) opens its deliveries");
	if ((r = delivery_open(sealed, len, sign_key->key, &d, err)) != 0)
		return r;
	if (strcmp(d.partner, partner) != 0) {
		r = cg_err_set(err, CG_ERR_POLICY, "this delivery is for partner '%s', not '%s'", d.partner, partner);
		goto out;
	}
	snprintf(st->name, sizeof(st->name), "%s", d.name);
	sodium_bin2hex(st->audience_id, sizeof(st->audience_id), d.audience_id, sizeof(d.audience_id));
	if ((r = outfile_open(&of, out_csv, 0600, err)) != 0)
		goto out;
	o.f = of.f;
	fputs("user_id\n", of.f);
	for (i = 0; i < d.n; i++) {
		uint64_t before = o.users;

		if ((r = agent_state_users_of(state, partner, &d.tokens[i], agent_audience_user, &o, err)) != 0)
			goto out;
		if (o.users == before)
			st->unknown++;
	}
	st->tokens = d.n;
	st->users = o.users;
	r = outfile_commit(&of, err);
out:
	outfile_abort(&of);
	if (d.tokens != NULL)
		sodium_memzero(d.tokens, d.n * sizeof(*d.tokens));
	delivery_free(&d);
	return r;
}
