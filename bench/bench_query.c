/*
 * bench_query.c - DP aggregates: the latency of a grouped sum over a store
 * of N joined subjects (default 1,000,000) against a plain C group-by of the
 * same data.  (The samplers' draws per second: bench_noise.c.)
 *
 * usage: bench_query DEMO_DIR   (keys and policy of a demo directory; the
 * data is generated here so that every person is on both platforms)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#include "bench/bench.h"
#include "agent/pack.h"
#include "synth/synth.h"
#include "crypto/keyfile.h"
#include "audit/audit.h"
#include "gateway/budget.h"
#include "gateway/ingest.h"
#include "gateway/join.h"
#include "gateway/query.h"
#include "store/store.h"
#include "policy/policy.h"




/* The baseline's group table: (region, category) -> sum, open addressing on a 64-bit hash. */
struct cell {
	uint64_t h;
	char key[96];
	int64_t sum, count;
	int used;
};

static uint64_t
fnv(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void
cell_add(struct cell *t, size_t mask, const char *key, int64_t v)
{
	uint64_t h = fnv(key);
	size_t s;

	for (s = h & mask;; s = (s + 1) & mask) {
		if (!t[s].used) {
			t[s].used = 1;
			t[s].h = h;
			snprintf(t[s].key, sizeof(t[s].key), "%s", key);
		} else if (t[s].h != h || strcmp(t[s].key, key) != 0)
			continue;
		t[s].sum += v;
		t[s].count++;
		return;
	}
}

static const char *
field_str(const Crossgate__RecordPayload *p, const char *name)
{
	const Crossgate__Field *f = join_field(p, name);

	return f != NULL && f->value_case == CROSSGATE__FIELD__VALUE_STR_VALUE ? f->str_value : "*";
}

static int64_t
field_int(const Crossgate__RecordPayload *p, const char *name)
{
	const Crossgate__Field *f = join_field(p, name);

	return f != NULL && f->value_case == CROSSGATE__FIELD__VALUE_INT_VALUE ? f->int_value : 0;
}

int
main(int argc, char **argv)
{
	const char *dir, *env = getenv("BENCH_QUERY_SUBJECTS");
	char path[4400], data[4200], db[4200], out[4200];
	struct policy *pol = NULL;
	struct keyfile_key *storage;
	struct synth_truth truth;
	struct store *st = NULL;
	struct audit *a = NULL;
	struct cg_err e;
	struct query_spec q;
	struct query_stats qs;
	uint64_t subjects = env ? strtoull(env, NULL, 10) : 1000000;
	double t_query, t_base, t_mem;

	if (argc != 2) {
		fprintf(stderr, "usage: bench_query DEMO_DIR\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	dir = argv[1];
	snprintf(path, sizeof(path), "%s/policy.yaml", dir);
	if (policy_load(path, &pol, NULL, &e) != 0)
		bench_die(path, &e);
	storage = bench_key(dir, "gateway/storage.key", KEYFILE_STORAGE);

	/* Everyone on both platforms, consenting to analytics: `subjects` joined subjects. */
	snprintf(data, sizeof(data), "%s/query-data", dir);
	snprintf(db, sizeof(db), "%s/query.db", dir);
	snprintf(out, sizeof(out), "%s/query-out.csv", dir);
	bench_joined_store(dir, data, db, pol, subjects, &st, &a, &truth.matched);

	/* The query: a noisy sum of course spend by region and course category. */
	memset(&q, 0, sizeof(q));
	q.pol = pol;
	q.purpose = "analytics";
	q.group_by[q.ngroup++] = "region";
	q.group_by[q.ngroup++] = "k_top_course_category";
	if (query_metric_parse("sum:k_course_spend_cents", &q.metrics[q.nmetrics++], &e) != 0)
		bench_die("metric", &e);
	q.analyst = policy_principal_by_name(pol, "analyst");
	q.out_path = out;
	q.storage = storage;
	t_query = bench_now();
	if (query_run(st, a, &q, &qs, &e) != 0)
		bench_die("query", &e);
	t_query = bench_now() - t_query;

	/*
	 * The baseline: the same question answered by plain C over the same
	 * stored data: read K's records, open each, and a hash group-by.  (It
	 * needs no join, as every person is on both platforms, and no noise.)
	 */
	{
		struct store_ref *refs = NULL;
		size_t n = 0, i, mask = 1023;
		struct cell *t = calloc(mask + 1, sizeof(*t));
		char **keys = NULL;
		int64_t *vals = NULL;

		t_base = bench_now();
		if (t == NULL || store_refs_load(st, "k", &refs, &n, &e) != 0)
			bench_die("baseline", &e);
		if ((keys = malloc(n * sizeof(*keys))) == NULL || (vals = malloc(n * sizeof(*vals))) == NULL)
			bench_die("baseline", NULL);
		for (i = 0; i < n; i++) {
			Crossgate__RecordPayload *p;
			char k2[96];

			if (join_open(st, storage, &refs[i], &p, &e) != 0)
				bench_die("baseline open", &e);
			snprintf(k2, sizeof(k2), "%s|%s", field_str(p, "region"), field_str(p, "top_course_category"));
			cell_add(t, mask, k2, field_int(p, "course_spend_cents"));
			keys[i] = strdup(k2);
			vals[i] = field_int(p, "course_spend_cents");
			crossgate__record_payload__free_unpacked(p, NULL);
		}
		t_base = bench_now() - t_base;
		/* and the group-by alone, on values already in memory */
		memset(t, 0, (mask + 1) * sizeof(*t));
		t_mem = bench_now();
		for (i = 0; i < n; i++)
			cell_add(t, mask, keys[i], vals[i]);
		t_mem = bench_now() - t_mem;
		printf("query   %.2f s for a noisy grouped sum over %llu joined subjects (%llu groups, %llu released): "
		    "join %.2f s, read+open+aggregate %.2f s, charge+noise+write %.3f s\n", t_query,
		    (unsigned long long)truth.matched, (unsigned long long)qs.groups, (unsigned long long)qs.released,
		    qs.join_seconds, qs.collect_seconds, qs.release_seconds);
		printf("        %.2f s plain C over the same store: read and open the %zu K records, hash group-by\n",
		    t_base, n);
		printf("        ratio %.2fx the plain C group-by of the same stored data (target within 3x)\n",
		    t_query / t_base);
		printf("        (the group-by alone, on values already in memory: %.3f s)\n", t_mem);
		for (i = 0; i < n; i++)
			free(keys[i]);
		free(keys);
		free(vals);
		free(refs);
		free(t);
	}

	unlink(out);
	snprintf(path, sizeof(path), "%s.meta.json", out);
	unlink(path);
	audit_free(a);
	store_close(st);
	unlink(db);
	policy_free(pol);
	return 0;
}
