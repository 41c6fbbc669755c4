/*
 * test_monitor.c - the monitor of privilege separation: through handles, the
 * worker's operations give what the keys themselves give (a record sealed
 * under privilege separation opens offline and back); every malformed
 * request is refused with its reason; a broken frame ends the session.
 */
#include "gateway/monitor.h"

#include <pthread.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sodium.h>

#include "audit/note.h"
#include "crypto/seal.h"
#include "gateway/audience.h"
#include "gateway/erase.h"
#include "gateway/ingest.h"
#include "proto/monitor.pb-c.h"
#include "tests/unit/cgtest.h"

/* more than one request's worth of tombstones */
#define NTOMB (KEYFILE_AGENT_TOMBSTONES_MAX + 6)

/* A key agent that counts the TOMBSTONES requests it forwards to the monitor's client. */
struct counting {
	const struct keyfile_agent *inner;
	int calls;
};

static int
counting_tombstones(void *ctx, const unsigned char *kinds, const unsigned char *tokens, size_t n, unsigned char *out,
    struct cg_err *err)
{
	struct counting *c = ctx;

	c->calls++;
	return c->inner->tombstones(c->inner->ctx, kinds, tokens, n, out, err);
}

/*
 * Ingest's tombstones through the monitor: a batch's withdrawals (the
 * stager, at erase_apply) and a window's check of data records ask for
 * KEYFILE_AGENT_TOMBSTONES_MAX at a time, not one request per record (a
 * push of 5,000 records cost 5,000 round trips before).
 */
static void
check_tombstone_requests(const struct keyfile_key *storage, const struct token *toks, size_t n)
{
	char dir[] = "/tmp/cg-test-montomb-XXXXXX", path[128];
	struct counting cnt = { storage->agent, 0 };
	struct keyfile_agent agent = *storage->agent;
	struct keyfile_key key = *storage;
	struct store *st = NULL;
	struct erase_stager *sg = NULL;
	struct erase_check *chk = NULL;
	struct cg_err err;
	uint64_t erased = 1;
	int64_t *at = calloc(n, sizeof(*at));
	unsigned char *rev = calloc(n, 1);
	size_t i, nrev = 0;

	agent.ctx = &cnt;
	agent.tombstones = counting_tombstones;
	key.agent = &agent;
	CHECK(at != NULL && rev != NULL && mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/t.db", dir);
	CHECK(store_open(path, STORE_OPEN_CREATE, &st, &err) == 0);
	if (st == NULL || at == NULL || rev == NULL)
		goto out;
	CHECK(erase_schema(st, &err) == 0 && store_begin(st, &err) == 0);
	CHECK(erase_stager_open(st, &key, "k", &sg, &err) == 0);
	for (i = 0; sg != NULL && i < n; i++)
		CHECK(erase_stager_add(sg, &toks[i], 1, 100, 100, &err) == 0);
	CHECK(sg != NULL && erase_apply(sg, &erased, &err) == 0);
	CHECK_EQ_INT(erased, 0);
	CHECK_EQ_INT(cnt.calls, (int)((n + KEYFILE_AGENT_TOMBSTONES_MAX - 1) / KEYFILE_AGENT_TOMBSTONES_MAX));
	erase_stager_close(sg);
	/* the same users' records: those dated up to the withdrawal are kept out, the newer ones not */
	for (i = 0; i < n; i++)
		at[i] = i % 3 == 0 ? 101 : 100;
	cnt.calls = 0;
	CHECK(erase_check_open(st, &key, "k", &chk, &err) == 0);
	CHECK(chk != NULL && erase_check_keys(chk, toks, at, n, rev, &err) == 0);
	CHECK_EQ_INT(cnt.calls, (int)((n + KEYFILE_AGENT_TOMBSTONES_MAX - 1) / KEYFILE_AGENT_TOMBSTONES_MAX));
	for (i = 0; i < n; i++)
		nrev += rev[i] == (i % 3 != 0);
	CHECK_EQ_INT(nrev, n);
	erase_check_close(chk);
	store_rollback(st);
out:
	store_close(st);
	free(at);
	free(rev);
	unlink(path);
	rmdir(dir);
}

static struct monitor_keys real;

struct served {
	int fd;
	uint64_t n;
	int r;
};

static void *
serve_thread(void *arg)
{
	struct served *s = arg;
	struct cg_err err;

	s->r = monitor_serve(&real, s->fd, &s->n, &err);
	close(s->fd);
	return NULL;
}

/* The monitor's answer to a raw request: 1 ok, 0 refused (reason in why). */
static int
answer(const Crossgate__Monitor__MonitorRequest *q, const unsigned char *extra, size_t extra_len, char *why,
    size_t why_size)
{
	unsigned char buf[MONITOR_MSG_MAX + 256], *resp = NULL;
	size_t n, resp_len = 0;
	Crossgate__Monitor__MonitorResponse *r;
	int refused = -1, ok;

	if (crossgate__monitor__monitor_request__get_packed_size(q) + extra_len > sizeof(buf))
		abort();
	n = crossgate__monitor__monitor_request__pack(q, buf);
	if (extra_len > 0)
		memcpy(buf + n, extra, extra_len);
	CHECK(monitor_answer(&real, buf, n + extra_len, &resp, &resp_len, &refused) == 0);
	r = crossgate__monitor__monitor_response__unpack(NULL, resp_len, resp);
	CHECK(r != NULL);
	ok = r != NULL && r->ok;
	CHECK_EQ_INT(refused, !ok);
	snprintf(why, why_size, "%s", r != NULL && r->error != NULL ? r->error : "");
	if (r != NULL)
		crossgate__monitor__monitor_response__free_unpacked(r, NULL);
	free(resp);
	return ok;
}

static void
test_refusals(void)
{
	Crossgate__Monitor__MonitorRequest q = CROSSGATE__MONITOR__MONITOR_REQUEST__INIT;
	unsigned char b[80] = { 0 }, toks[(KEYFILE_AGENT_TOMBSTONES_MAX + 1) * 32] = { 0 },
	    kinds[KEYFILE_AGENT_TOMBSTONES_MAX + 1];
	static const unsigned char unknown_field[] = { 0x78, 0x01 };   /* field 15, varint 1 */
	char why[512];

	memset(kinds, 1, sizeof(kinds));
	q.op = 99;
	CHECK(!answer(&q, NULL, 0, why, sizeof(why)));
	CHECK_CONTAINS(why, "unknown op 99");
	q.op = CROSSGATE__MONITOR__OP__OP_UNSPECIFIED;
	CHECK(!answer(&q, NULL, 0, why, sizeof(why)));
	CHECK_CONTAINS(why, "unknown op 0");

	q.op = CROSSGATE__MONITOR__OP__UNWRAP_BATCH_KEY;
	CHECK(!answer(&q, NULL, 0, why, sizeof(why)));
	CHECK_CONTAINS(why, "a field the op needs is missing");
	q.wrapped.data = b;
	q.wrapped.len = 10;
	CHECK(!answer(&q, NULL, 0, why, sizeof(why)));
	CHECK_CONTAINS(why, "wrapped key of 10 bytes, not 80");
	q.wrapped.len = 80;
	q.batch_id.data = b;
	q.batch_id.len = 16;
	CHECK(!answer(&q, NULL, 0, why, sizeof(why)));
	CHECK_CONTAINS(why, "fields the op does not take");
	q.batch_id.len = 0;
	CHECK(!answer(&q, unknown_field, sizeof(unknown_field), why, sizeof(why)));
	CHECK_CONTAINS(why, "unknown fields");
	CHECK(!answer(&q, NULL, 0, why, sizeof(why)));   /* 80 zero bytes were sealed to nobody */
	CHECK(why[0] != '\0');

	memset(&q, 0, sizeof(q));
	crossgate__monitor__monitor_request__init(&q);
	q.op = CROSSGATE__MONITOR__OP__STORAGE_WRAP;
	q.batch_id.data = b;
	q.batch_id.len = 15;
	q.key.data = b;
	q.key.len = 32;
	CHECK(!answer(&q, NULL, 0, why, sizeof(why)));
	CHECK_CONTAINS(why, "batch id of 15 bytes, not 16");
	q.op = CROSSGATE__MONITOR__OP__STORAGE_UNWRAP;
	q.batch_id.len = 16;
	CHECK(!answer(&q, NULL, 0, why, sizeof(why)));
	CHECK_CONTAINS(why, "fields the op does not take");

	crossgate__monitor__monitor_request__init(&q);
	q.op = CROSSGATE__MONITOR__OP__TOMBSTONES;
	q.kinds.data = kinds;
	q.kinds.len = KEYFILE_AGENT_TOMBSTONES_MAX + 1;
	q.tokens.data = toks;
	q.tokens.len = (KEYFILE_AGENT_TOMBSTONES_MAX + 1) * 32;
	CHECK(!answer(&q, NULL, 0, why, sizeof(why)));
	CHECK_CONTAINS(why, "more than 512 tokens");
	q.kinds.len = 2;
	q.tokens.len = 63;
	CHECK(!answer(&q, NULL, 0, why, sizeof(why)));
	CHECK_CONTAINS(why, "tokens of 63 bytes, not 64");
	kinds[1] = 3;
	q.tokens.len = 64;
	CHECK(!answer(&q, NULL, 0, why, sizeof(why)));
	CHECK_CONTAINS(why, "token 1: unknown kind");
	kinds[1] = 2;
	CHECK(answer(&q, NULL, 0, why, sizeof(why)));

	crossgate__monitor__monitor_request__init(&q);
	q.op = CROSSGATE__MONITOR__OP__SIGN_CHECKPOINT;
	q.checkpoint.data = (unsigned char *)"anything at all\n";
	q.checkpoint.len = strlen("anything at all\n");
	q.name = (char *)"anything at all";
	CHECK(!answer(&q, NULL, 0, why, sizeof(why)));
	CHECK_CONTAINS(why, "not a checkpoint body");
	q.checkpoint.data = (unsigned char *)"log/a\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
	q.checkpoint.len = strlen((const char *)q.checkpoint.data);
	q.name = (char *)"log/b";
	CHECK(!answer(&q, NULL, 0, why, sizeof(why)));
	CHECK_CONTAINS(why, "the checkpoint's origin is not the signer's name");
	q.name = (char *)"log/a";
	CHECK(answer(&q, NULL, 0, why, sizeof(why)));

	crossgate__monitor__monitor_request__init(&q);
	q.op = CROSSGATE__MONITOR__OP__REFUSAL_MAC;
	q.digest.data = b;
	q.digest.len = 31;
	CHECK(!answer(&q, NULL, 0, why, sizeof(why)));
	CHECK_CONTAINS(why, "digest of 31 bytes, not 32");
	q.digest.len = 32;
	q.name = (char *)"x";
	CHECK(!answer(&q, NULL, 0, why, sizeof(why)));
	CHECK_CONTAINS(why, "fields the op does not take");

	{
		static const unsigned char junk[] = { 0xff, 0xff, 0xff };
		unsigned char *resp = NULL;
		size_t resp_len;
		int refused = 0;

		CHECK(monitor_answer(&real, junk, sizeof(junk), &resp, &resp_len, &refused) == 0);
		CHECK_EQ_INT(refused, 1);
		free(resp);
	}
}

/* Through handles and a live monitor: what the keys themselves give. */
static void
test_ops(void)
{
	struct monitor_client *c = NULL;
	struct monitor_keys h;
	struct served sv;
	pthread_t t;
	struct cg_err err;
	unsigned char key[32], back[32], wrapped[SEAL_WRAPPED_LEN], w1[INGEST_WRAPPED_KEY_LEN],
	    w2[INGEST_WRAPPED_KEY_LEN], id[16], t1[NTOMB][32], t2[NTOMB][32];
	struct token toks[NTOMB];
	struct keyfile_key *other = NULL;
	char body[NOTE_NAME_MAX + 80], *note = NULL;
	struct checkpoint cp;
	size_t i, body_len, text_len;
	int fds[2];

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
	sv.fd = fds[0];
	sv.n = 0;
	sv.r = 1;
	CHECK(monitor_client_new(fds[1], real.enc, real.sign, real.storage, &c, &err) == 0);
	CHECK(pthread_create(&t, NULL, serve_thread, &sv) == 0);
	monitor_client_keys(c, &h);
	CHECK(h.enc->key == NULL && h.sign->key == NULL && h.storage->key == NULL);
	CHECK(memcmp(h.sign->pub, real.sign->pub, 32) == 0 && memcmp(h.enc->id, real.enc->id, KEYFILE_ID_LEN) == 0);

	/* a batch key sealed to the gateway opens through the monitor */
	randombytes_buf(key, sizeof(key));
	randombytes_buf(id, sizeof(id));
	CHECK(seal_wrap_key(key, real.enc->pub, wrapped) == 0);
	CHECK(h.enc->agent->unwrap_key(h.enc->agent->ctx, wrapped, sizeof(wrapped), back, &err) == 0);
	CHECK(memcmp(back, key, 32) == 0);
	CHECK(keyfile_generate(KEYFILE_X25519_SECRET, &other, &err) == 0);
	CHECK(seal_wrap_key(key, other->pub, wrapped) == 0);
	CHECK(h.enc->agent->unwrap_key(h.enc->agent->ctx, wrapped, sizeof(wrapped), back, &err) == CG_ERR_CRYPTO);
	CHECK_CONTAINS(err.msg, "monitor: ");
	keyfile_free(other);

	/* at rest: sealed by the monitor = sealed offline (gateway ingest, purge), and back */
	CHECK(ingest_wrap_batch_key(h.storage, id, key, w1) == 0);
	CHECK(ingest_wrap_batch_key(real.storage, id, key, w2) == 0);
	CHECK(memcmp(w1, w2, sizeof(w1)) == 0);
	memset(back, 0, sizeof(back));
	CHECK(ingest_unwrap_batch_key(h.storage, id, w2, sizeof(w2), back, &err) == 0);
	CHECK(memcmp(back, key, 32) == 0);
	w2[5] ^= 1;
	CHECK(ingest_unwrap_batch_key(h.storage, id, w2, sizeof(w2), back, &err) != 0);
	CHECK_CONTAINS(err.msg, "does not open with this storage key");

	/* tombstones, more than one request's worth: the same as offline */
	for (i = 0; i < NTOMB; i++) {
		toks[i].kind = i % 2 ? TOKEN_KIND_PHONE : TOKEN_KIND_EMAIL;
		randombytes_buf(toks[i].value, TOKEN_LEN);
	}
	CHECK(erase_tombstones(h.storage, toks, NTOMB, t1, &err) == 0);
	CHECK(erase_tombstones(real.storage, toks, NTOMB, t2, &err) == 0);
	CHECK(memcmp(t1, t2, sizeof(t1)) == 0);
	CHECK(memcmp(t1[0], t1[1], 32) != 0);
	check_tombstone_requests(h.storage, toks, NTOMB);

	/* a checkpoint signed by the monitor verifies under the gateway's public key */
	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "crossgate/test");
	cp.size = 7;
	randombytes_buf(cp.root, sizeof(cp.root));
	CHECK(checkpoint_format(&cp, body, sizeof(body), &body_len) == 0);
	CHECK(h.sign->agent->sign_note(h.sign->agent->ctx, body, body_len, cp.origin, &note, &err) == 0);
	CHECK(note != NULL && note_verify(note, strlen(note), cp.origin, real.sign->pub, &text_len, &err) == 0);
	CHECK_EQ_INT(text_len, body_len);
	free(note);
	CHECK(h.sign->agent->sign_note(h.sign->agent->ctx, "free text\n", 10, "free text", &note, &err) == CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "monitor: not a checkpoint body");

	/* an audience's refusal test: the monitor's HMAC is the one the key gives offline */
	{
		unsigned char digest[32], m1[32], m2[32];

		randombytes_buf(digest, sizeof(digest));
		CHECK(audience_refusal_mac(h.storage, digest, m1, &err) == 0);
		CHECK(audience_refusal_mac(real.storage, digest, m2, &err) == 0);
		CHECK(memcmp(m1, m2, 32) == 0);
		digest[0] ^= 1;
		CHECK(audience_refusal_mac(h.storage, digest, m2, &err) == 0);
		CHECK(memcmp(m1, m2, 32) != 0);
	}

	monitor_client_free(c);   /* the worker goes: the monitor's session ends cleanly */
	pthread_join(t, NULL);
	CHECK_EQ_INT(sv.r, 0);
	CHECK(sv.n >= 8);
	sodium_memzero(key, sizeof(key));
}

/* A frame that is empty or too long ends the session; so does a monitor that went away, for the worker. */
static void
test_frames(void)
{
	static const unsigned char empty[4] = { 0, 0, 0, 0 }, huge[4] = { 0, 1, 0, 1 };
	struct monitor_client *c = NULL;
	struct monitor_keys h;
	struct cg_err err;
	unsigned char key[32], w[INGEST_WRAPPED_KEY_LEN], id[16] = { 0 };
	uint64_t n = 0;
	int fds[2];

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
	CHECK(write(fds[1], empty, 4) == 4);
	CHECK(monitor_serve(&real, fds[0], &n, &err) == CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "a message of 0 bytes");
	CHECK(write(fds[1], huge, 4) == 4);
	CHECK(monitor_serve(&real, fds[0], &n, &err) == CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "a message of 65537 bytes");
	CHECK(write(fds[1], huge, 2) == 2);
	close(fds[1]);
	CHECK(monitor_serve(&real, fds[0], &n, &err) == CG_ERR_IO);
	CHECK_CONTAINS(err.msg, "cut short");
	close(fds[0]);
	CHECK_EQ_INT(n, 0);

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
	CHECK(monitor_client_new(fds[1], real.enc, real.sign, real.storage, &c, &err) == 0);
	monitor_client_keys(c, &h);
	close(fds[0]);
	memset(key, 7, sizeof(key));
	CHECK(h.storage->agent->storage_wrap(h.storage->agent->ctx, id, key, w, &err) == CG_ERR_IO);
	CHECK(strstr(err.msg, "the monitor is gone") != NULL || strstr(err.msg, "monitor channel") != NULL);
	monitor_client_free(c);
}

int
main(void)
{
	struct keyfile_key *enc = NULL, *sign = NULL, *storage = NULL;
	struct cg_err err;

	if (sodium_init() < 0)
		return 1;
	CHECK(keyfile_generate(KEYFILE_X25519_SECRET, &enc, &err) == 0);
	CHECK(keyfile_generate(KEYFILE_ED25519_SECRET, &sign, &err) == 0);
	CHECK(keyfile_generate(KEYFILE_STORAGE, &storage, &err) == 0);
	if (enc == NULL || sign == NULL || storage == NULL)
		CGT_DONE();
	real.enc = enc;
	real.sign = sign;
	real.storage = storage;
	test_refusals();
	test_ops();
	test_frames();
	keyfile_free(enc);
	keyfile_free(sign);
	keyfile_free(storage);
	CGT_DONE();
}
