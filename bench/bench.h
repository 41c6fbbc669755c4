/*
 * bench.h - what every benchmark program needs: a monotonic clock, a fatal
 * error, and a key from a demo directory.  Header-only: each bench program is
 * its own program.
 */
#ifndef CG_BENCH_H
#define CG_BENCH_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "agent/pack.h"
#include "audit/audit.h"
#include "crypto/keyfile.h"
#include "gateway/ingest.h"
#include "policy/policy.h"
#include "store/store.h"
#include "synth/synth.h"

/* Seconds on the monotonic clock. */
static inline double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Print what failed (the error's message, else errno's) and exit 1. */
static inline void
bench_die(const char *what, const struct cg_err *e)
{
	fprintf(stderr, "bench: %s: %s\n", what, e ? e->msg : strerror(errno));
	exit(1);
}

/* DIR/keys/NAME of type t, or exit. */
static inline struct keyfile_key *
bench_key(const char *dir, const char *name, enum keyfile_type t)
{
	char path[4096];
	struct keyfile_key *k = NULL;
	struct cg_err e;

	snprintf(path, sizeof(path), "%s/keys/%s", dir, name);
	if (keyfile_load(path, t, &k, &e) != 0)
		bench_die(path, &e);
	return k;
}

/*
 * A fresh store DB (removed first) holding `subjects` people on both
 * platforms, every one consenting to analytics, packed and ingested with the
 * keys of the demo directory `dir` under its policy: about `subjects`
 * joined subjects (~7% share no identifier kind across platforms, so a few
 * more people are generated).  The synthetic CSVs go to `data`.  *matched is
 * the generator's count of joined subjects.  Exits on any failure.
 */
static inline void
bench_joined_store(const char *dir, const char *data, const char *db, const struct policy *pol, uint64_t subjects,
    struct store **st, struct audit **a, uint64_t *matched)
{
	const char *parts[2] = { "k", "g" }, *files[2] = { "k_users.csv", "g_viewers.csv" };
	struct keyfile_key *match, *sign[2], *gwpub, *gwenc, *gwsign, *storage;
	char csv[4300], batch[4300], path[4300];
	struct synth_opts so;
	struct synth_truth truth;
	struct cg_err e;
	int s;

	match = bench_key(dir, "match.key", KEYFILE_MATCH);
	sign[0] = bench_key(dir, "k/sign.key", KEYFILE_ED25519_SECRET);
	sign[1] = bench_key(dir, "g/sign.key", KEYFILE_ED25519_SECRET);
	gwpub = bench_key(dir, "gateway/enc.pub", KEYFILE_X25519_PUBLIC);
	gwenc = bench_key(dir, "gateway/enc.key", KEYFILE_X25519_SECRET);
	gwsign = bench_key(dir, "gateway/sign.key", KEYFILE_ED25519_SECRET);
	storage = bench_key(dir, "gateway/storage.key", KEYFILE_STORAGE);
	if (mkdir(data, 0700) != 0 && errno != EEXIST)
		bench_die(data, NULL);
	synth_opts_default(&so);
	so.users = subjects + subjects / 13;
	so.shared_frac = 1.0;
	so.no_match_frac = 0;
	so.no_analytics_frac = 0;
	so.bad_frac = 0;
	so.dup_frac = 0;
	if (synth_write(data, &so, &truth, &e) != 0)
		bench_die("synth", &e);
	*matched = truth.matched;
	unlink(db);
	snprintf(path, sizeof(path), "%s-wal", db);
	unlink(path);
	if (store_open(db, STORE_OPEN_CREATE, st, &e) != 0 || audit_open(*st, gwsign, a, &e) != 0)
		bench_die(db, &e);
	for (s = 0; s < 2; s++) {
		struct pack_opts po;
		struct pack_stats ps;
		struct ingest_keys ik = { gwenc, storage, 0 };
		struct ingest_result res;

		snprintf(csv, sizeof(csv), "%s/%s", data, files[s]);
		snprintf(batch, sizeof(batch), "%s/%s.batch", data, parts[s]);
		memset(&po, 0, sizeof(po));
		po.pol = pol; po.partner_id = parts[s]; po.input = csv; po.output = batch;
		po.match = match; po.sign = sign[s]; po.gateway = gwpub;
		if (pack_csv(&po, &ps, &e) != 0)
			bench_die("pack", &e);
		if (ingest_batch_file(*st, *a, pol, &ik, batch, &res, &e) != 0)
			bench_die("ingest", &e);
		unlink(batch);
	}
	keyfile_free(match);
	keyfile_free(sign[0]);
	keyfile_free(sign[1]);
	keyfile_free(gwpub);
	keyfile_free(gwenc);
	keyfile_free(storage);
	/* gwsign is not freed: the audit log signs with it for the rest of the program */
}

#endif
