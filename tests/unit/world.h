/*
 * world.h - a small two-partner world for the pack, ingest and export tests:
 * fresh keys in memory, a policy naming them, a temporary directory for CSV
 * and batch files, and a gateway store with its audit log.
 *
 * Everything here aborts the test program on a setup failure: a broken world
 * is not a test result.
 */
#ifndef CG_TEST_WORLD_H
#define CG_TEST_WORLD_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>
#include <sqlite3.h>

#include "agent/pack.h"
#include "crypto/keyfile.h"
#include "audit/audit.h"
#include "gateway/ingest.h"
#include "store/store.h"
#include "policy/policy.h"

#define WORLD_PATH_MAX 512

/* The CSV headers that the world's policy declares for each partner. */
#define WORLD_K_HEADER "user_id,email,phone,age,region,consent,consent_at,course_spend_cents,top_course_category\n"
#define WORLD_G_HEADER "user_id,email,phone,age,region,consent,consent_at,watch_minutes,top_game_category\n"

struct world {
	char dir[WORLD_PATH_MAX];
	struct keyfile_key *match;       /* shared by k and g */
	struct keyfile_key *ksign, *kpub;
	struct keyfile_key *gsign, *gpub;
	struct keyfile_key *gwenc, *gwencpub;
	struct keyfile_key *gwsign, *gwsignpub;
	struct keyfile_key *storage;
	char kline[KEYFILE_LINE_MAX], gline[KEYFILE_LINE_MAX];
	struct policy *pol;
	struct store *st;
	struct audit *au;
};

static inline void
world_die(const char *what, const struct cg_err *err)
{
	fprintf(stderr, "world setup: %s: %s\n", what, err != NULL ? err->msg : "");
	exit(2);
}

static inline void
world_path(const struct world *w, const char *name, char out[WORLD_PATH_MAX])
{
	if ((size_t)snprintf(out, WORLD_PATH_MAX, "%s/%s", w->dir, name) >= WORLD_PATH_MAX)
		world_die("path too long", NULL);
}

static inline void
world_write(const struct world *w, const char *name, const char *text)
{
	char path[WORLD_PATH_MAX];
	FILE *f;

	world_path(w, name, path);
	if ((f = fopen(path, "wb")) == NULL || fwrite(text, 1, strlen(text), f) != strlen(text) || fclose(f) != 0)
		world_die(path, NULL);
}

static inline int
world_exists(const struct world *w, const char *name)
{
	char path[WORLD_PATH_MAX];
	struct stat sb;

	world_path(w, name, path);
	return stat(path, &sb) == 0;
}

static inline struct keyfile_key *
world_key(enum keyfile_type type)
{
	struct keyfile_key *k = NULL;
	struct cg_err err;

	if (keyfile_generate(type, &k, &err) != 0)
		world_die("keyfile_generate", &err);
	return k;
}

static inline struct keyfile_key *
world_pub(const struct keyfile_key *sec)
{
	struct keyfile_key *k = NULL;
	struct cg_err err;

	if (keyfile_public_of(sec, &k, &err) != 0)
		world_die("keyfile_public_of", &err);
	return k;
}

/*
 * The policy text (caller frees): policy/example.yaml cut down to two
 * features per partner, with the given k, k's signing key line and `extra`
 * appended (e.g. a comment, which changes the policy hash and nothing else).
 */
static inline char *
world_policy_text(const struct world *w, uint32_t k, const char *kline, const char *extra)
{
	static const char fmt[] =
	    "# crossgate unit-test world\n"
	    "version: 1\n"
	    "name: unit-test-world\n"
	    "k: %u\n"
	    "default_phone_country: CN\n"
	    "email:\n"
	    "  gmail_dots: true\n"
	    "  plus_tags: true\n"
	    "  plus_tags_all: false\n"
	    "  googlemail: true\n"
	    "purposes: [match, analytics, marketing]\n"
	    "partners:\n"
	    "  - id: k\n"
	    "    name: Paid-knowledge platform\n"
	    "    signing_key: \"%s\"\n"
	    "    columns:\n"
	    "      - {name: user_id, type: string, role: local_id}\n"
	    "      - {name: email, type: string, role: identifier, kind: email}\n"
	    "      - {name: phone, type: string, role: identifier, kind: phone}\n"
	    "      - {name: age, type: int, min: 13, max: 120, role: quasi_identifier,\n"
	    "         generalize: {band: 10}}\n"
	    "      - name: region\n"
	    "        type: string\n"
	    "        role: quasi_identifier\n"
	    "        generalize:\n"
	    "          map: {CN-BJ: North, CN-TJ: North, CN-SH: East, CN-JS: East}\n"
	    "          other: Other\n"
	    "      - {name: consent, type: purposes, role: consent}\n"
	    "      - {name: consent_at, type: timestamp, role: consent_time}\n"
	    "      - {name: course_spend_cents, type: int, min: 0, max: 100000000, role: feature}\n"
	    "      - {name: top_course_category, type: category, role: feature,\n"
	    "         values: [programming, finance, language]}\n"
	    "  - id: g\n"
	    "    name: Game live-streaming platform\n"
	    "    signing_key: \"%s\"\n"
	    "    columns:\n"
	    "      - {name: user_id, type: string, role: local_id}\n"
	    "      - {name: email, type: string, role: identifier, kind: email}\n"
	    "      - {name: phone, type: string, role: identifier, kind: phone}\n"
	    "      - {name: age, type: int, min: 13, max: 120, role: quasi_identifier,\n"
	    "         generalize: {band: 10}}\n"
	    "      - name: region\n"
	    "        type: string\n"
	    "        role: quasi_identifier\n"
	    "        generalize:\n"
	    "          map: {CN-BJ: North, CN-TJ: North, CN-SH: East, CN-JS: East}\n"
	    "          other: Other\n"
	    "      - {name: consent, type: purposes, role: consent}\n"
	    "      - {name: consent_at, type: timestamp, role: consent_time}\n"
	    "      - {name: watch_minutes, type: int, min: 0, max: 10000000, role: feature}\n"
	    "      - {name: top_game_category, type: category, role: feature,\n"
	    "         values: [moba, fps, rpg]}\n"
	    /* Tiny worlds: no l-diversity and a lax suppression limit, so the tests see plain k-anonymity. */
	    "privacy: {l: 1, suppression_limit: 0.9, max_exports: 1000}\n"
	    "principals:\n"
	    "  - {name: analyst, role: analyst, identity: \"crossgate:analyst:analyst\",\n"
	    "     purposes: [analytics, marketing], row_exports: [analytics, marketing]}\n"
	    "%s";
	size_t cap = sizeof(fmt) + 3 * KEYFILE_LINE_MAX + 32 + (extra ? strlen(extra) : 0);
	char *t = malloc(cap);

	if (t == NULL)
		world_die("out of memory", NULL);
	snprintf(t, cap, fmt, (unsigned)k, kline, w->gline, extra ? extra : "");
	return t;
}

/* A parsed policy (caller frees); kline NULL means k's real key. */
static inline struct policy *
world_policy(const struct world *w, uint32_t k, const char *kline, const char *extra)
{
	struct policy *p = NULL;
	struct cg_err err;
	char *text = world_policy_text(w, k, kline ? kline : w->kline, extra);

	if (policy_parse("world.yaml", text, strlen(text), &p, NULL, &err) != 0)
		world_die("policy_parse", &err);
	free(text);
	return p;
}

/* A policy parsed from `fmt`, whose two %s are k's and g's signing key lines (caller frees). */
static inline struct policy *
world_policy_fmt(const struct world *w, const char *name, const char *fmt)
{
	size_t cap = strlen(fmt) + 2 * KEYFILE_LINE_MAX;
	struct policy *p = NULL;
	struct cg_err err;
	char *text = malloc(cap);

	if (text == NULL)
		world_die("out of memory", NULL);
	snprintf(text, cap, fmt, w->kline, w->gline);
	if (policy_parse(name, text, strlen(text), &p, NULL, &err) != 0)
		world_die("policy_parse", &err);
	free(text);
	return p;
}

/* Keys, a temporary directory and the policy with this k; the store is opened by world_open_store. */
static inline void
world_init(struct world *w, uint32_t k)
{
	const char *tmp = getenv("TMPDIR");

	memset(w, 0, sizeof(*w));
	snprintf(w->dir, sizeof(w->dir), "%s/cgtest-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
	if (mkdtemp(w->dir) == NULL)
		world_die("mkdtemp", NULL);
	w->match = world_key(KEYFILE_MATCH);
	w->ksign = world_key(KEYFILE_ED25519_SECRET);
	w->gsign = world_key(KEYFILE_ED25519_SECRET);
	w->gwenc = world_key(KEYFILE_X25519_SECRET);
	w->gwsign = world_key(KEYFILE_ED25519_SECRET);
	w->storage = world_key(KEYFILE_STORAGE);
	w->kpub = world_pub(w->ksign);
	w->gpub = world_pub(w->gsign);
	w->gwencpub = world_pub(w->gwenc);
	w->gwsignpub = world_pub(w->gwsign);
	if (keyfile_public_line(w->kpub, w->kline, sizeof(w->kline)) != 0 ||
	    keyfile_public_line(w->gpub, w->gline, sizeof(w->gline)) != 0)
		world_die("keyfile_public_line", NULL);
	w->pol = world_policy(w, k, NULL, NULL);
}

static inline void
world_open_store(struct world *w)
{
	char path[WORLD_PATH_MAX];
	struct cg_err err;

	world_path(w, "gateway.db", path);
	if (store_open(path, STORE_OPEN_CREATE, &w->st, &err) != 0)
		world_die("store_open", &err);
	if (audit_open(w->st, w->gwsign, &w->au, &err) != 0)
		world_die("audit_open", &err);
}

/* Pack options for partner `partner` ("k" or "g") with its real keys: CSV and batch names in the world's directory. */
static inline struct pack_opts
world_pack_opts(const struct world *w, const char *partner, char csv[WORLD_PATH_MAX], const char *csv_name,
    char batch[WORLD_PATH_MAX], const char *batch_name)
{
	struct pack_opts o;

	memset(&o, 0, sizeof(o));
	world_path(w, csv_name, csv);
	world_path(w, batch_name, batch);
	o.pol = w->pol;
	o.partner_id = partner;
	o.input = csv;
	o.output = batch;
	o.match = w->match;
	o.sign = strcmp(partner, "g") == 0 ? w->gsign : w->ksign;
	o.gateway = w->gwencpub;
	return o;
}

/* Write `csv_text` as csv_name and pack it into batch_name; setup failures abort. */
static inline void
world_pack(const struct world *w, const char *partner, const char *csv_name, const char *csv_text,
    const char *batch_name, struct pack_stats *stats)
{
	char csv[WORLD_PATH_MAX], batch[WORLD_PATH_MAX];
	struct pack_opts o = world_pack_opts(w, partner, csv, csv_name, batch, batch_name);
	struct cg_err err;

	world_write(w, csv_name, csv_text);
	if (pack_csv(&o, stats, &err) != 0)
		world_die("pack_csv", &err);
}

static inline int
world_ingest(struct world *w, const struct policy *pol, const char *batch_name, struct ingest_result *res,
    struct cg_err *err)
{
	struct ingest_keys keys = { w->gwenc, w->storage, 0 };
	char path[WORLD_PATH_MAX];

	world_path(w, batch_name, path);
	return ingest_batch_file(w->st, w->au, pol != NULL ? pol : w->pol, &keys, path, res, err);
}

/* One integer from a query with an optional text parameter. */
static inline int64_t
world_sql_int(struct world *w, const char *sql, const char *param)
{
	sqlite3_stmt *s = NULL;
	int64_t v;

	if (sqlite3_prepare_v2(store_db(w->st), sql, -1, &s, NULL) != SQLITE_OK)
		world_die(sql, NULL);
	if (param != NULL)
		sqlite3_bind_text(s, 1, param, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) != SQLITE_ROW)
		world_die(sql, NULL);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static inline int64_t
world_records(struct world *w)
{
	return world_sql_int(w, "SELECT count(*) FROM records", NULL);
}

static inline int64_t
world_batches(struct world *w)
{
	return world_sql_int(w, "SELECT count(*) FROM batches", NULL);
}

/* The latest audit event as stored; caller frees with crossgate__audit_event__free_unpacked. */
static inline Crossgate__AuditEvent *
world_last_event(struct world *w)
{
	sqlite3_stmt *s = NULL;
	Crossgate__AuditEvent *ev = NULL;

	if (sqlite3_prepare_v2(store_db(w->st), "SELECT event FROM audit_events ORDER BY seq DESC LIMIT 1", -1, &s,
	    NULL) != SQLITE_OK)
		world_die("audit select", NULL);
	if (sqlite3_step(s) == SQLITE_ROW)
		ev = crossgate__audit_event__unpack(NULL, (size_t)sqlite3_column_bytes(s, 0),
		    sqlite3_column_blob(s, 0));
	sqlite3_finalize(s);
	if (ev == NULL)
		world_die("no audit event", NULL);
	return ev;
}

static inline uint64_t
world_event_count(const Crossgate__AuditEvent *ev, const char *key)
{
	size_t i;

	for (i = 0; i < ev->n_counts; i++)
		if (strcmp(ev->counts[i]->key, key) == 0)
			return ev->counts[i]->value;
	return UINT64_MAX;
}

/* Read a whole file (NUL-terminated; caller frees), or NULL. */
static inline char *
world_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	*len = 0;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) != NULL) {
		*len = fread(buf, 1, (size_t)n, f);
		buf[*len] = '\0';
	}
	fclose(f);
	return buf;
}

static inline void
world_free(struct world *w)
{
	DIR *d;
	struct dirent *de;
	char path[WORLD_PATH_MAX];

	audit_free(w->au);
	store_close(w->st);
	policy_free(w->pol);
	keyfile_free(w->match);
	keyfile_free(w->ksign);
	keyfile_free(w->kpub);
	keyfile_free(w->gsign);
	keyfile_free(w->gpub);
	keyfile_free(w->gwenc);
	keyfile_free(w->gwencpub);
	keyfile_free(w->gwsign);
	keyfile_free(w->gwsignpub);
	keyfile_free(w->storage);
	if ((d = opendir(w->dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			world_path(w, de->d_name, path);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(w->dir);
	memset(w, 0, sizeof(*w));
}

#endif
