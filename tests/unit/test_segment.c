/*
 * test_segment.c - segment audiences (gateway/segment.h): a k-means release
 * written by the model itself (model_plan_write) is read back, and on random
 * subjects the cluster a segment assigns is the nearest released centre by a
 * direct computation here (clamp, log1p or not, the fixed-point scaling of
 * model.h, Euclidean); a subject lacking a column is in no segment; and every
 * binding error is refused with its reason: no sidecar, not k-means, a
 * sidecar that does not match the CSV, a cluster out of range or withheld,
 * a column not shared for marketing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cgtest.h"
#include "world.h"
#include "gateway/model.h"
#include "gateway/segment.h"

static struct policy *pol;
static struct join jw;
static struct join_col cols[JOIN_COLS_MAX];
static size_t ncols;
static char dir[] = "/tmp/cg_segment.XXXXXX";

static const char policy_fmt[] =
    "version: 1\n"
    "name: segment-test\n"
    "default_phone_country: CN\n"
    "purposes: [match, analytics, marketing]\n"
    "partners:\n"
    "  - id: k\n"
    "    name: K\n"
    "    signing_key: \"%s\"\n"
    "    columns:\n"
    "      - {name: user_id, type: string, role: local_id}\n"
    "      - {name: email, type: string, role: identifier, kind: email}\n"
    "      - {name: consent, type: purposes, role: consent}\n"
    "      - {name: consent_at, type: timestamp, role: consent_time}\n"
    "      - {name: spend, type: int, role: feature, bounds: [0, 200000]}\n"
    "      - {name: secret, type: int, role: feature, bounds: [0, 100], purposes: [analytics]}\n"
    "  - id: g\n"
    "    name: G\n"
    "    signing_key: \"%s\"\n"
    "    columns:\n"
    "      - {name: user_id, type: string, role: local_id}\n"
    "      - {name: email, type: string, role: identifier, kind: email}\n"
    "      - {name: consent, type: purposes, role: consent}\n"
    "      - {name: consent_at, type: timestamp, role: consent_time}\n"
    "      - {name: watch, type: int, role: feature, bounds: [0, 20000]}\n"
    "privacy: {threshold: 20, query_rho: 0.5, budget_rho: 100.0}\n"
    "principals:\n"
    "  - {name: analyst, role: analyst, identity: \"crossgate:analyst:a\", purposes: [analytics, marketing]}\n"
    "marketing: {min_audience: 50, receivers: [g], sources: [k, g]}\n";

#define MISSING INT64_C(-0x7fffffffffff)
struct subject {
	Crossgate__Field f[2][2], *fp[2][2];
	Crossgate__RecordPayload pl[2];
	Crossgate__RecordPayload *pp[2];
};

static void
field_int(struct subject *s, int side, const char *name, int64_t v)
{
	Crossgate__RecordPayload *p = &s->pl[side];
	Crossgate__Field *f = &s->f[side][p->n_fields];

	if (v == MISSING)
		return;
	crossgate__field__init(f);
	f->name = (char *)name;
	f->value_case = CROSSGATE__FIELD__VALUE_INT_VALUE;
	f->int_value = v;
	s->fp[side][p->n_fields++] = f;
}

static void
subject_make(struct subject *s, int64_t spend, int64_t watch)
{
	memset(s, 0, sizeof(*s));
	crossgate__record_payload__init(&s->pl[0]);
	crossgate__record_payload__init(&s->pl[1]);
	s->pl[0].fields = s->fp[0];
	s->pl[1].fields = s->fp[1];
	field_int(s, 0, "spend", spend);
	field_int(s, 1, "watch", watch);
	s->pp[0] = &s->pl[0];
	s->pp[1] = &s->pl[1];
}

/* Three clumps, plus values beyond the bounds on both sides. */
static void
person(int64_t x[2])
{
	static const int64_t mid[3][2] = { { 500, 300 }, { 20000, 3000 }, { 150000, 15000 } };
	uint32_t c = randombytes_uniform(3);

	x[0] = mid[c][0] + (int64_t)randombytes_uniform(2 * (uint32_t)mid[c][0] / 3 + 1) - mid[c][0] / 3;
	x[1] = mid[c][1] + (int64_t)randombytes_uniform(2 * (uint32_t)mid[c][1] / 3 + 1) - mid[c][1] / 3;
	if (randombytes_uniform(20) == 0)
		x[randombytes_uniform(2)] = randombytes_uniform(2) ? -1000 : 900000;
}

/* The direct computation: clamp, transform, scale to [-F/2, F/2] (rounded for the subject), nearest. */
static double
direct_coord(double x, double lo, double hi, int lg, int round_it)
{
	double u;

	x = x < lo ? lo : x > hi ? hi : x;
	u = lg ? (log1p(x) - log1p(lo)) / (log1p(hi) - log1p(lo)) : (x - lo) / (hi - lo);
	return round_it ? (double)llround(u * MODEL_FIX) - MODEL_FIX / 2 : u * MODEL_FIX - MODEL_FIX / 2;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		CHECK(0);
		return;
	}
	fputs(text, f);
	fclose(f);
}

/* Release k-means through the model, then check the segment against the direct computation. */
static void
test_nearest_matches_direct(int lg)
{
	static const double lo[2] = { 0, 0 }, hi[2] = { 200000, 20000 };
	struct model_spec m;
	struct model_plan *p = NULL;
	struct model_stats ms;
	struct segment *seg = NULL;
	struct cg_err err;
	char path[128], line[256];
	double cen[MODEL_K_MAX][2];
	uint32_t ids[MODEL_K_MAX], hits[MODEL_K_MAX + 1] = { 0 };
	size_t nc = 0, i, c, bad = 0, in = 0;
	FILE *f;

	memset(&m, 0, sizeof(m));
	m.pol = pol;
	m.purpose = "analytics";
	m.analyst = policy_principal_by_name(pol, "analyst");
	m.kind = MODEL_KMEANS;
	m.cols[m.ncols++] = "k_spend";
	m.cols[m.ncols++] = "g_watch";
	m.k = 3;
	m.steps = 4;
	m.log1p = lg;
	m.seed = 7;
	m.rho_nano = 20 * (int64_t)1000000000;
	CHECK_EQ_INT(model_plan_make(&m, &jw, &p, &err), 0);
	if (p == NULL)
		return;
	for (i = 0; i < 3000; i++) {
		struct subject s;
		int64_t x[2];
		person(x);
		subject_make(&s, x[0], x[1]);
		CHECK_EQ_INT(model_plan_add(p, s.pp, &err), 0);
	}
	CHECK_EQ_INT(model_plan_cost(p, &(int64_t){ 0 }, &err), 0);
	CHECK_EQ_INT(model_plan_release(p, &err), 0);
	memset(&ms, 0, sizeof(ms));
	ms.released = 0;
	for (c = 0; c < m.k; c++) {
		double cnt, ce[MODEL_COLS_MAX];
		ms.released += (uint64_t)model_plan_cluster(p, c, &cnt, ce);
	}
	snprintf(path, sizeof(path), "%s/km%d.csv", dir, lg);
	CHECK_EQ_INT(model_plan_write(p, &jw, path, "k+g", &ms, &err), 0);
	model_plan_free(p);
	CHECK(ms.released >= 2);

	/* the released centres, read from the CSV as an analyst would */
	if ((f = fopen(path, "r")) == NULL) {
		CHECK(0);
		return;
	}
	CHECK(fgets(line, sizeof(line), f) != NULL);
	CHECK_STR(line, "cluster,count,\"k_spend\",\"g_watch\"\n");   /* model.c quotes the names */
	while (fgets(line, sizeof(line), f) != NULL && nc < MODEL_K_MAX) {
		double cnt;
		if (sscanf(line, "%u,%lf,%lf,%lf", &ids[nc], &cnt, &cen[nc][0], &cen[nc][1]) == 4)
			nc++;
	}
	fclose(f);
	CHECK_EQ_INT(nc, ms.released);
	if (nc == 0)
		return;

	CHECK_EQ_INT(segment_load(path, ids[nc - 1], &seg, &err), 0);
	if (seg == NULL)
		return;
	CHECK_EQ_INT(segment_ncols(seg), 2);
	CHECK_EQ_INT(segment_bind(seg, cols, ncols, &err), 0);
	for (i = 0; i < 5000; i++) {
		struct subject s;
		int64_t x[2];
		double z[2], bd = INFINITY;
		uint32_t want = 0, got;
		person(x);
		for (c = 0; c < 2; c++)
			z[c] = direct_coord((double)x[c], lo[c], hi[c], lg, 1);
		for (c = 0; c < nc; c++) {
			double d0 = z[0] - direct_coord(cen[c][0], lo[0], hi[0], lg, 0);
			double d1 = z[1] - direct_coord(cen[c][1], lo[1], hi[1], lg, 0);
			if (d0 * d0 + d1 * d1 < bd) {
				bd = d0 * d0 + d1 * d1;
				want = ids[c];
			}
		}
		got = segment_nearest(seg, x);
		bad += got != want;
		hits[got]++;
		subject_make(&s, x[0], x[1]);
		CHECK_EQ_INT(segment_eval(seg, s.pp), want == ids[nc - 1]);
		in += want == ids[nc - 1];
	}
	CHECK_EQ_INT(bad, 0);
	/* the clumps are told apart: more than one cluster is used, and the chosen one is neither empty nor all */
	CHECK(in > 0 && in < 5000);
	for (c = 0, i = 0; c <= MODEL_K_MAX; c++)
		i += hits[c] > 0;
	CHECK(i >= 2);
	{
		/* a subject without a column is in no segment */
		struct subject s;
		subject_make(&s, 500, MISSING);
		CHECK_EQ_INT(segment_eval(seg, s.pp), 0);
	}
	segment_free(seg);
}

static void
expect_load(const char *name, const char *csv, const char *meta, uint32_t cluster, int code, const char *msg)
{
	struct segment *seg = NULL;
	struct cg_err err;
	char path[128], mpath[160];

	snprintf(path, sizeof(path), "%s/%s.csv", dir, name);
	snprintf(mpath, sizeof(mpath), "%s.meta.json", path);
	write_file(path, csv);
	unlink(mpath);
	if (meta != NULL)
		write_file(mpath, meta);
	cg_err_clear(&err);
	CHECK_EQ_INT(segment_load(path, cluster, &seg, &err), code);
	CHECK_CONTAINS(err.msg, msg);
	segment_free(seg);
}

static void
test_load_errors(void)
{
	static const char csv[] = "cluster,count,k_spend,g_watch\n1,400,500,300\n3,900,150000,15000\n";
	static const char meta[] = "{\"model\": \"kmeans\", \"columns\": [\"k_spend\", \"g_watch\"], \"bounds\": "
	    "{\"k_spend\": [0, 200000], \"g_watch\": [0, 20000]}, \"log1p\": true, \"fixed_point\": 4096, \"k\": 3, "
	    "\"clusters_released\": 2}";
	struct segment *seg = NULL;
	struct cg_err err;
	char path[128], buf[512];

	expect_load("nometa", csv, NULL, 1, CG_ERR_FORMAT, "no readable sidecar");
	expect_load("ridge", "row,col,value\n1,1,5\n", "{\"model\": \"ridge\", \"columns\": [\"k_spend\"]}", 1,
	    CG_ERR_FORMAT, "the sidecar is not a k-means release's");
	expect_load("withheld", csv, meta, 2, CG_ERR_ARG, "cluster 2 was not released");
	expect_load("range", csv, meta, 4, CG_ERR_ARG, "--cluster 4: the model has clusters 1..3");
	expect_load("count", "cluster,count,k_spend,g_watch\n1,400,500,300\n", meta, 1, CG_ERR_FORMAT,
	    "1 clusters where the sidecar says 2 were released");
	expect_load("header", "cluster,count,g_watch,k_spend\n1,400,500,300\n3,900,150000,15000\n", meta, 1,
	    CG_ERR_FORMAT, "column 1 is 'g_watch' but the sidecar says 'k_spend'");
	expect_load("fields", "cluster,count,k_spend\n1,400,500\n", meta, 1, CG_ERR_FORMAT,
	    "3 fields where a k-means release over the sidecar's 2 columns has 4");
	expect_load("nan", "cluster,count,k_spend,g_watch\n1,400,abc,300\n3,900,1,1\n", meta, 1, CG_ERR_FORMAT,
	    "the centre's 'k_spend' is not a number");
	expect_load("twice", "cluster,count,k_spend,g_watch\n1,400,5,300\n1,900,1,1\n", meta, 1, CG_ERR_FORMAT,
	    "cluster 1 twice");
	expect_load("nobounds", csv, "{\"model\": \"kmeans\", \"columns\": [\"k_spend\", \"g_watch\"], \"bounds\": "
	    "{\"k_spend\": [0, 200000]}, \"log1p\": false, \"fixed_point\": 4096, \"k\": 3, \"clusters_released\": 2}",
	    1, CG_ERR_FORMAT, "column 2 has no [lo, hi] bounds");
	expect_load("nofile", "", meta, 1, CG_ERR_FORMAT, "empty: not a released k-means output");

	/* binding: a column the policy does not share for marketing (only for analytics), or does not have */
	snprintf(buf, sizeof(buf), "%s", meta);
	snprintf(path, sizeof(path), "%s/secret.csv", dir);
	write_file(path, "cluster,count,k_secret\n1,400,5\n");
	snprintf(buf, sizeof(buf), "%s/secret.csv.meta.json", dir);
	write_file(buf, "{\"model\": \"kmeans\", \"columns\": [\"k_secret\"], \"bounds\": {\"k_secret\": [0, 100]}, "
	    "\"log1p\": false, \"fixed_point\": 4096, \"k\": 2, \"clusters_released\": 1}");
	CHECK_EQ_INT(segment_load(path, 1, &seg, &err), 0);
	if (seg != NULL) {
		CHECK_EQ_INT(segment_bind(seg, cols, ncols, &err), CG_ERR_ARG);
		CHECK_CONTAINS(err.msg, "no column 'k_secret' is shared for this purpose");
		CHECK_CONTAINS(err.msg, "(for marketing)");
		segment_free(seg);
		seg = NULL;
	}
	/* the hash and canonical form name the file's bytes, the cluster, the columns and the transform */
	snprintf(path, sizeof(path), "%s/withheld.csv", dir);
	CHECK_EQ_INT(segment_load(path, 3, &seg, &err), 0);
	if (seg != NULL) {
		unsigned char h[32];
		char hex[65], want[65], canon[256];
		crypto_hash_sha256(h, (const unsigned char *)csv, strlen(csv));
		sodium_bin2hex(want, sizeof(want), h, sizeof(h));
		segment_hash_hex(seg, hex);
		CHECK_STR(hex, want);
		segment_canon(seg, canon, sizeof(canon));
		snprintf(buf, sizeof(buf), "segment sha256 %s cluster 3 of 3 columns k_spend,g_watch log1p", want);
		CHECK_STR(canon, buf);
		segment_free(seg);
	}
}

int
main(void)
{
	struct world w;
	struct cg_err err;
	char *text, cmd[64];
	size_t cap, nqi;

	if (sodium_init() < 0 || mkdtemp(dir) == NULL)
		return 1;
	world_init(&w, 2);
	cap = sizeof(policy_fmt) + 2 * KEYFILE_LINE_MAX;
	if ((text = malloc(cap)) == NULL)
		return 1;
	snprintf(text, cap, policy_fmt, w.kline, w.gline);
	if (policy_parse("segment-test.yaml", text, strlen(text), &pol, NULL, &err) != 0) {
		fprintf(stderr, "policy: %s\n", err.msg);
		return 1;
	}
	free(text);
	memset(&jw, 0, sizeof(jw));
	jw.side[0] = policy_partner_find(pol, "k");
	jw.side[1] = policy_partner_find(pol, "g");
	join_columns(&jw, policy_purpose_bit(pol, "marketing"), cols, &ncols, &nqi);

	test_nearest_matches_direct(1);
	test_nearest_matches_direct(0);
	test_load_errors();

	policy_free(pol);
	world_free(&w);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	CGT_DONE();
}
