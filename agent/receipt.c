/* receipt.c - see receipt.h */
#define _GNU_SOURCE   /* syncfs: one flush for a batch's receipts instead of an fsync per file */
#include "agent/receipt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "base/outfile.h"
#include "crypto/merkle.h"
#include "proto/audit.pb-c.h"

#define RECEIPT_PROOF_MAX (256 * 1024)   /* audit/audit.h AUDIT_PROOF_MAX: no proof file is larger */

/* The names of the purposes in `bits`, in policy order; *n of them (at most 32). */
static void
receipt_purposes(const struct policy *pol, uint32_t bits, const char *names[32], size_t *n)
{
	size_t i;

	*n = 0;
	for (i = 0; i < pol->npurposes && i < 32; i++)
		if (bits & (1u << i))
			names[(*n)++] = pol->purposes[i];
}

struct receipt_entry {
	char name[72];
	uint32_t id_kind;
	uint32_t withdrawn;
	int64_t at;
	unsigned char nonce[RECEIPT_NONCE_LEN];
};

struct receipt_batch {
	char *dir;
	const struct policy *pol;
	char partner[65];
	uint32_t batch_kind;
	struct receipt_entry *e;
	unsigned char (*leaves)[MERKLE_HASH_LEN];   /* merkle_leaf_hash of each receipt leaf */
	size_t n, cap;
};

int
receipt_batch_new(const char *dir, const struct policy *pol, const char *partner, uint32_t batch_kind,
    struct receipt_batch **out, struct cg_err *err)
{
	struct receipt_batch *rb;

	*out = NULL;
	if ((rb = calloc(1, sizeof(*rb))) == NULL || (rb->dir = strdup(dir)) == NULL) {
		free(rb);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	rb->pol = pol;
	rb->batch_kind = batch_kind;
	snprintf(rb->partner, sizeof(rb->partner), "%s", partner);
	*out = rb;
	return 0;
}

void
receipt_batch_free(struct receipt_batch *rb)
{
	if (rb == NULL)
		return;
	if (rb->e != NULL)
		sodium_memzero(rb->e, rb->cap * sizeof(*rb->e));
	free(rb->e);
	free(rb->leaves);
	free(rb->dir);
	free(rb);
}

uint64_t
receipt_batch_count(const struct receipt_batch *rb)
{
	return rb->n;
}

/* A user id is a file name only if it is plainly one; anything else is named by its line. */
static int
receipt_safe_name(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 64 && s[0] != '.' && s[0] != '-' &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

int
receipt_batch_add(struct receipt_batch *rb, const char *uid, size_t uid_len, uint64_t line, uint32_t id_kind,
    const char *normalized, size_t len, uint32_t withdrawn, int64_t withdrawn_at, unsigned char leaf[RECEIPT_LEAF_LEN],
    struct cg_err *err)
{
	struct receipt_entry *e;
	const char *names[32];
	char name[72];
	size_t nn;
	int r;

	name[0] = '\0';
	if (uid != NULL && uid_len > 0 && uid_len <= 64) {
		memcpy(name, uid, uid_len);
		name[uid_len] = '\0';
	}
	if (!receipt_safe_name(name))
		snprintf(name, sizeof(name), "line-%llu", (unsigned long long)line);
	if (rb->n == rb->cap) {
		size_t ncap = rb->cap ? rb->cap * 2 : 64;
		struct receipt_entry *ne = malloc(ncap * sizeof(*ne));
		unsigned char (*nl)[MERKLE_HASH_LEN] = realloc(rb->leaves, ncap * sizeof(*nl));

		if (nl != NULL)
			rb->leaves = nl;
		if (ne == NULL || nl == NULL) {
			free(ne);
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		}
		/* copied by hand so that the old nonces are wiped */
		if (rb->n)
			memcpy(ne, rb->e, rb->n * sizeof(*ne));
		if (rb->e != NULL)
			sodium_memzero(rb->e, rb->cap * sizeof(*rb->e));
		free(rb->e);
		rb->e = ne;
		rb->cap = ncap;
	}
	e = &rb->e[rb->n];
	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->id_kind = id_kind;
	e->withdrawn = withdrawn;
	e->at = withdrawn_at;
	randombytes_buf(e->nonce, sizeof(e->nonce));
	receipt_purposes(rb->pol, withdrawn, names, &nn);
	receipt_leaf(e->nonce, id_kind, normalized, len, leaf);
	if ((r = receipt_entry_hash(leaf, withdrawn_at, names, nn, rb->leaves[rb->n])) != 0)
		return cg_err_set(err, r, "a purpose name is longer than %d bytes", RECEIPT_NAME_MAX);
	rb->n++;
	return 0;
}

/* The receipt's one line of text (malloc'd, NUL-terminated). */
static int
receipt_text(const Crossgate__Receipt *r, char **out, struct cg_err *err)
{
	unsigned char *buf;
	size_t len = crossgate__receipt__get_packed_size(r), plen = strlen(RECEIPT_PREFIX), tlen;

	*out = NULL;
	tlen = sodium_base64_encoded_len(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	if ((buf = malloc(len + 1)) == NULL || (*out = malloc(plen + tlen + 1)) == NULL) {
		free(buf);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	crossgate__receipt__pack(r, buf);
	memcpy(*out, RECEIPT_PREFIX, plen);
	sodium_bin2base64(*out + plen, tlen, buf, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	strcat(*out, "\n");
	sodium_memzero(buf, len);
	free(buf);
	return 0;
}

int
receipt_write(const char *path, const Crossgate__Receipt *r, struct cg_err *err)
{
	struct outfile of = { 0 };
	char *text = NULL;
	int rc;

	if ((rc = receipt_text(r, &text, err)) != 0 || (rc = outfile_open(&of, path, 0600, err)) != 0)
		goto out;
	if (fputs(text, of.f) < 0) {
		outfile_abort(&of);
		rc = cg_err_set(err, CG_ERR_IO, "cannot write receipt %s", path);
		goto out;
	}
	rc = outfile_commit(&of, err);
out:
	free(text);
	return rc;
}

/*
 * One receipt of a batch: written under a temporary name and renamed, so
 * that a file with the final name is whole; receipt_batch_write flushes them all with
 * one syncfs (an fsync per file cost 5 ms each: 107 s for 20,000).
 */
static int
receipt_write_nosync(const char *path, const Crossgate__Receipt *r, struct cg_err *err)
{
	char *text = NULL, *tmp = NULL, hex[17];
	unsigned char rnd[8];
	size_t len;
	int fd = -1, rc;

	if ((rc = receipt_text(r, &text, err)) != 0)
		return rc;
	len = strlen(text);
	if ((tmp = malloc(strlen(path) + 2 + 16 + 5)) == NULL) {
		rc = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* As outfile.h does: a name nobody can predict, created exclusively, so a planted symlink is an error. */
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	snprintf(tmp, strlen(path) + 2 + 16 + 5, "%s.%s.tmp", path, hex);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		rc = cg_err_set(err, CG_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	rc = write(fd, text, len) == (ssize_t)len ? 0 : -1;
	if (close(fd) != 0 || rc != 0 || rename(tmp, path) != 0) {
		rc = cg_err_set(err, CG_ERR_IO, "cannot write receipt %s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
out:
	free(tmp);
	free(text);
	return rc;
}

/*
 * Every perfect subtree of the batch's tree (level l, index i: the MTH of
 * leaves [i * 2^l, (i + 1) * 2^l)), built once, so that each receipt's path
 * costs O(log n) (merkle_inclusion_proof_nodes) instead of a pass over all
 * the leaves: a batch of n receipts is O(n log n), not O(n^2).
 */
struct receipt_levels {
	unsigned char (*node[64])[MERKLE_HASH_LEN];   /* node[0] is the leaves (borrowed) */
	uint64_t count[64];
	unsigned int n;
};

static void
receipt_levels_free(struct receipt_levels *lv)
{
	unsigned int l;

	for (l = 1; l < lv->n; l++)
		free(lv->node[l]);
	memset(lv, 0, sizeof(*lv));
}

static int
receipt_levels_build(unsigned char (*leaves)[MERKLE_HASH_LEN], uint64_t n, struct receipt_levels *lv,
    struct cg_err *err)
{
	uint64_t i;

	memset(lv, 0, sizeof(*lv));
	lv->node[0] = leaves;
	lv->count[0] = n;
	lv->n = 1;
	while (lv->count[lv->n - 1] >= 2 && lv->n < 64) {
		unsigned int l = lv->n;
		uint64_t c = lv->count[l - 1] / 2;

		if ((lv->node[l] = malloc(c * MERKLE_HASH_LEN)) == NULL) {
			receipt_levels_free(lv);
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		}
		for (i = 0; i < c; i++)
			merkle_node_hash(lv->node[l - 1][2 * i], lv->node[l - 1][2 * i + 1], lv->node[l][i]);
		lv->count[l] = c;
		lv->n++;
	}
	return 0;
}

static int
receipt_levels_get(void *arg, unsigned int level, uint64_t index, unsigned char out[MERKLE_HASH_LEN],
    struct cg_err *err)
{
	const struct receipt_levels *lv = arg;

	if (level >= lv->n || index >= lv->count[level])
		return cg_err_set(err, CG_ERR_ARG, "no tree node at level %u, index %llu", level,
		    (unsigned long long)index);
	memcpy(out, lv->node[level][index], MERKLE_HASH_LEN);
	return 0;
}

int
receipt_batch_write(struct receipt_batch *rb, const unsigned char batch_id[16], struct cg_err *err)
{
	struct receipt_levels lv;
	Crossgate__Receipt r;
	unsigned char proof[MERKLE_PROOF_MAX][MERKLE_HASH_LEN];
	ProtobufCBinaryData path[MERKLE_PROOF_MAX];
	const char *names[32];
	char hex[33], *file = NULL;
	const struct normalize_email_rules *er = &rb->pol->email;
	size_t i, j, plen, nn;
	int rc = 0;

	sodium_bin2hex(hex, sizeof(hex), batch_id, 16);
	if ((rc = receipt_levels_build(rb->leaves, rb->n, &lv, err)) != 0)
		return rc;
	if ((file = malloc(strlen(rb->dir) + 120)) == NULL) {
		receipt_levels_free(&lv);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	for (i = 0; i < rb->n && rc == 0; i++) {
		const struct receipt_entry *e = &rb->e[i];

		if ((rc = merkle_inclusion_proof_nodes(receipt_levels_get, &lv, rb->n, i, proof, &plen, err)) != 0)
			break;
		crossgate__receipt__init(&r);
		r.format = (char *)RECEIPT_FORMAT;
		r.partner_id = rb->partner;
		r.batch_id.data = (uint8_t *)batch_id;
		r.batch_id.len = 16;
		r.batch_kind = rb->batch_kind;
		receipt_purposes(rb->pol, e->withdrawn, names, &nn);
		r.withdrawn = (char **)names;
		r.n_withdrawn = nn;
		r.withdrawn_at = e->at;
		r.id_kind = (Crossgate__IdKind)e->id_kind;
		r.nonce.data = (uint8_t *)e->nonce;
		r.nonce.len = RECEIPT_NONCE_LEN;
		r.leaf_index = i;
		r.tree_size = rb->n;
		for (j = 0; j < plen; j++) {
			path[j].data = proof[j];
			path[j].len = MERKLE_HASH_LEN;
		}
		r.path = path;
		r.n_path = plen;
		r.gmail_dots = er->gmail_dots != 0;
		r.plus_tags = er->plus_tags != 0;
		r.plus_tags_all = er->plus_tags_all != 0;
		r.googlemail = er->googlemail != 0;
		r.default_country = (char *)rb->pol->default_country;
		snprintf(file, strlen(rb->dir) + 120, "%s/%s-%s.receipt", rb->dir, hex, e->name);
		rc = receipt_write_nosync(file, &r, err);
	}
	free(file);
	receipt_levels_free(&lv);
	/* Durable before pack reports success: the files, then the directory's entries. */
	if (rc == 0) {
		int dfd = open(rb->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || syncfs(dfd) != 0 || fsync(dfd) != 0)
			rc = cg_err_set(err, CG_ERR_IO, "cannot flush the receipts in %s: %s", rb->dir, strerror(errno));
		if (dfd >= 0)
			close(dfd);
	}
	return rc;
}

/* ---- reading and attaching ------------------------------------------------- */

int
receipt_parse(const char *text, size_t len, Crossgate__Receipt **out, struct cg_err *err)
{
	unsigned char *bin = NULL;
	size_t blen = 0, plen = strlen(RECEIPT_PREFIX);
	int rc = 0;

	*out = NULL;
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	if (len > RECEIPT_FILE_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "larger than 512 KiB");
	if (len < plen || memcmp(text, RECEIPT_PREFIX, plen) != 0 || memchr(text, '\0', len) != NULL)
		return cg_err_set(err, CG_ERR_FORMAT, "not a crossgate receipt (one line: %s and base64url)",
		    RECEIPT_PREFIX);
	if ((bin = malloc(len)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	if (sodium_base642bin(bin, len, text + plen, len - plen, NULL, &blen, NULL,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
		rc = cg_err_set(err, CG_ERR_FORMAT, "not a crossgate receipt (one line: %s and base64url)",
		    RECEIPT_PREFIX);
		goto out;
	}
	if ((*out = crossgate__receipt__unpack(NULL, blen, bin)) == NULL ||
	    (*out)->format == NULL || strcmp((*out)->format, RECEIPT_FORMAT) != 0) {
		if (*out != NULL)
			crossgate__receipt__free_unpacked(*out, NULL);
		*out = NULL;
		rc = cg_err_set(err, CG_ERR_FORMAT, "not a %s message", RECEIPT_FORMAT);
	}
out:
	free(bin);
	return rc;
}

int
receipt_read(const char *path, Crossgate__Receipt **out, struct cg_err *err)
{
	FILE *f;
	char *text;
	size_t len;
	int rc;

	*out = NULL;
	if ((f = fopen(path, "rb")) == NULL)
		return cg_err_set(err, CG_ERR_IO, "cannot open receipt %s: %s", path, strerror(errno));
	if ((text = malloc(RECEIPT_FILE_MAX + 3)) == NULL) {
		fclose(f);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	len = fread(text, 1, RECEIPT_FILE_MAX + 3, f);
	if (ferror(f))
		rc = cg_err_set(err, CG_ERR_IO, "cannot read receipt %s", path);
	else if ((rc = receipt_parse(text, len, out, err)) != 0)
		cg_err_prefix(err, "receipt %s", path);
	fclose(f);
	free(text);
	return rc;
}

/* Does the proof file's event commit the receipt's batch, of its partner, with a receipt root? */
static int
receipt_proof_matches(const Crossgate__Receipt *r, const unsigned char *proof, size_t len, struct cg_err *err)
{
	Crossgate__Audit__InclusionProof *ip;
	Crossgate__AuditEvent *ev = NULL;
	int rc = 0;

	if (len > RECEIPT_PROOF_MAX || (ip = crossgate__audit__inclusion_proof__unpack(NULL, len, proof)) == NULL)
		return cg_err_set(err, CG_ERR_FORMAT, "not an inclusion proof file");
	if (ip->erased || ip->event.len == 0 || (ev = crossgate__audit_event__unpack(NULL, ip->event.len,
	    ip->event.data)) == NULL)
		rc = cg_err_set(err, CG_ERR_FORMAT, "the proof carries no readable event");
	else if (ev->batch_id.len != 16 || r->batch_id.len != 16 || memcmp(ev->batch_id.data, r->batch_id.data, 16) != 0)
		rc = cg_err_set(err, CG_ERR_VERIFY, "the audit proof is for another batch than the receipt's");
	else if (ev->partner_id == NULL || r->partner_id == NULL || strcmp(ev->partner_id, r->partner_id) != 0 ||
	    ev->outcome == NULL || strcmp(ev->outcome, "ok") != 0 || ev->receipt_root.len != MERKLE_HASH_LEN)
		rc = cg_err_set(err, CG_ERR_VERIFY, "the audit event does not commit this partner's batch with a "
		    "receipt root");
	if (ev != NULL)
		crossgate__audit_event__free_unpacked(ev, NULL);
	crossgate__audit__inclusion_proof__free_unpacked(ip, NULL);
	return rc;
}

int
receipt_attach(const char *path, const unsigned char *proof, size_t len, struct cg_err *err)
{
	Crossgate__Receipt *r = NULL;
	int rc;

	if ((rc = receipt_read(path, &r, err)) != 0)
		return rc;
	if ((rc = receipt_proof_matches(r, proof, len, err)) != 0) {
		cg_err_prefix(err, "receipt %s", path);
		goto out;
	}
	r->audit_proof.data = (uint8_t *)proof;
	r->audit_proof.len = len;
	rc = receipt_write(path, r, err);
	r->audit_proof.data = NULL;   /* borrowed: not freed with the receipt */
	r->audit_proof.len = 0;
out:
	crossgate__receipt__free_unpacked(r, NULL);
	return rc;
}
