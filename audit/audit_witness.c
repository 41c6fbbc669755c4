/* audit_witness.c - see audit.h; witnesses (audit_int.h) */
#include "audit/audit.h"
#include "audit/audit_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- witnesses ----------------------------------------------------------- */

int
audit_cosign(struct store *st, const struct keyfile_key *gw_pub, const struct keyfile_key *witness, const char *name,
    const char *prev, size_t prev_len, uint64_t now, char **state, uint64_t *size, struct cg_err *err)
{
	struct checkpoint cp, pcp;
	struct audit_keychain kc;
	struct cg_err sub;
	sqlite3_stmt *s = NULL;
	char line[NOTE_COSIG_LINE_MAX], *note = NULL, *out = NULL;
	size_t text_len, len, ptl;
	uint64_t n;
	int r;

	*state = NULL;
	*size = 0;
	if (witness->type != KEYFILE_ED25519_SECRET)
		return cg_err_set(err, CG_ERR_ARG, "cosigning needs the witness's Ed25519 secret key");
	/* The witness trusts gw_pub, and the keys the log's verified rotations handed over to. */
	if ((r = audit_keychain_load(st, gw_pub, &kc, err)) != 0)
		return r;
	if ((r = audit_latest_checkpoint(st, 0, &note, &n, err)) != 0)
		return r;
	if ((r = audit_keychain_check(&kc, note, strlen(note), &cp, &text_len, err)) != 0) {
		cg_err_prefix(err, "%s: the latest checkpoint", store_path(st));
		goto out;
	}
	if (cp.size != n) {
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: the checkpoint stored at size %llu signs size %llu",
		    store_path(st), (unsigned long long)n, (unsigned long long)cp.size);
		goto out;
	}
	if (prev != NULL) {
		if ((r = audit_keychain_check(&kc, prev, prev_len, &pcp, &ptl, err)) != 0) {
			cg_err_prefix(err, "witness state");
			goto out;
		}
		if (pcp.size > cp.size) {
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: the log's latest checkpoint (size %llu) is smaller than "
			    "the one this witness last cosigned (size %llu): the log was rolled back; refusing to "
			    "cosign", store_path(st), (unsigned long long)cp.size, (unsigned long long)pcp.size);
			goto out;
		}
		cg_err_clear(&sub);
		if ((r = audit_consistent(st, pcp.size, pcp.root, cp.size, cp.root, &sub)) != 0) {
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: the log is not consistent with the checkpoint this "
			    "witness last cosigned (size %llu): refusing to cosign (%s)", store_path(st),
			    (unsigned long long)pcp.size, sub.msg);
			goto out;
		}
	}
	if ((r = note_cosign(note, text_len, name, witness->key, now, line, err)) != 0 ||
	    (r = audit_cosignature_add(st, cp.size, name, witness->pub, line, err)) != 0)
		goto out;
	len = strlen(note);
	if ((out = malloc(len + strlen(line) + 1)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(out, note, len);
	memcpy(out + len, line, strlen(line) + 1);
	*state = out;
	*size = cp.size;
	r = 0;
out:
	sqlite3_finalize(s);
	free(note);
	return r;
}

int
audit_cosig_put(struct store *st, const struct audit_cosig *c, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = audit_schema(st, err)) != 0 ||
	    (r = audit_prepare(st, "INSERT OR REPLACE INTO audit_cosignatures(size, witness, key_id, time, line) "
	    "VALUES (?1, ?2, ?3, ?4, ?5)", &s, err)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)c->size);
	sqlite3_bind_text(s, 2, c->witness, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)c->key_id);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)c->time);
	sqlite3_bind_text(s, 5, c->line, -1, SQLITE_STATIC);
	r = audit_step(st, s, "store cosignature", err);
	sqlite3_finalize(s);
	return r;
}

int
audit_cosignature_add(struct store *st, uint64_t size, const char *name, const unsigned char pub[32], const char *line,
    struct cg_err *err)
{
	struct audit_cosig c;
	sqlite3_stmt *s = NULL;
	char buf[NOTE_COSIG_LINE_MAX + 1];
	size_t tl, len = strlen(line);
	uint64_t t;
	int rc, r;

	if (len == 0 || len > NOTE_COSIG_LINE_MAX)
		return cg_err_set(err, CG_ERR_FORMAT, "cosignature line is empty or longer than %d bytes",
		    NOTE_COSIG_LINE_MAX);
	if ((r = audit_schema(st, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT note FROM audit_checkpoints WHERE size = ?1", &s, err)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)(size > INT64_MAX ? INT64_MAX : size));
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		r = rc == SQLITE_DONE ? cg_err_set(err, CG_ERR_NOTFOUND, "%s: no checkpoint at size %llu to cosign",
		    store_path(st), (unsigned long long)size) : audit_dberr(st, "read checkpoints", err);
		goto out;
	}
	{
		const char *note = (const char *)sqlite3_column_text(s, 0);

		if (audit_note_text(note, strlen(note), &tl) != 0) {
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: the checkpoint at size %llu is not a signed note",
			    store_path(st), (unsigned long long)size);
			goto out;
		}
		if ((r = note_verify_cosig_line(note, tl, line, len, name, pub, &t, err)) != 0) {
			if (r == CG_ERR_NOTFOUND)
				r = cg_err_set(err, CG_ERR_VERIFY, "the cosignature line is not by witness %s", name);
			goto out;
		}
	}
	/* Stored with its newline, as a note's signature line. */
	snprintf(buf, sizeof(buf), "%s%s", line, line[len - 1] == '\n' ? "" : "\n");
	c.size = size;
	c.witness = name;
	c.key_id = note_cosig_key_id(name, pub);
	c.time = t;
	c.line = buf;
	r = audit_cosig_put(st, &c, err);
out:
	sqlite3_finalize(s);
	return r;
}

int
audit_cosig_iter(struct store *st, uint64_t from, audit_cosig_cb cb, void *arg, struct cg_err *err)
{
	struct audit_cosig c;
	sqlite3_stmt *s = NULL;
	int rc, r;

	if ((r = audit_schema(st, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT size, witness, key_id, time, line FROM audit_cosignatures WHERE size >= ?1 "
	    "ORDER BY size, witness, key_id", &s, err)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)(from > INT64_MAX ? INT64_MAX : from));
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		c.size = (uint64_t)sqlite3_column_int64(s, 0);
		c.witness = (const char *)sqlite3_column_text(s, 1);
		c.key_id = (uint32_t)sqlite3_column_int64(s, 2);
		c.time = (uint64_t)sqlite3_column_int64(s, 3);
		c.line = (const char *)sqlite3_column_text(s, 4);
		if ((r = cb(&c, arg)) != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? 0 : audit_dberr(st, "read cosignatures", err);
out:
	sqlite3_finalize(s);
	return r;
}

int
audit_verify_witnesses(struct store *st, const struct keyfile_key *gw_pub, const struct audit_witness *w, size_t n,
    size_t quorum, uint64_t *size, size_t *got, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	struct audit_keychain kc;
	struct checkpoint ck;
	unsigned char *seen = NULL;
	uint64_t cur = AUDIT_NONE, best_size = 0, qsize = 0;
	size_t count = 0, best = 0, qgot = 0, i, j, distinct = 0;
	int rc, r;

	*size = 0;
	*got = 0;
	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++) {
			if (strcmp(w[i].name, w[j].name) == 0 && memcmp(w[i].pub, w[j].pub, 32) == 0)
				break;
		}
		distinct += j == i;
	}
	if (quorum == 0 || quorum > distinct)
		return cg_err_set(err, CG_ERR_ARG, "the quorum must be between 1 and the number of distinct named "
		    "witnesses (%zu)", distinct);
	if ((seen = calloc(n, 1)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	if ((r = audit_schema(st, err)) != 0 || (r = audit_keychain_load(st, gw_pub, &kc, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT c.size, c.witness, c.line, k.note FROM audit_cosignatures c "
	    "JOIN audit_checkpoints k ON k.size = c.size ORDER BY c.size DESC", &s, err)) != 0)
		goto out;
	for (;;) {
		uint64_t sz = 0;

		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			sz = (uint64_t)sqlite3_column_int64(s, 0);
		/*
		 * A size's cosignatures are all read: the largest with a quorum wins.
		 * The older ones are read and verified too: every stored
		 * cosignature of a named witness must hold.
		 */
		if (cur != AUDIT_NONE && (rc != SQLITE_ROW || sz != cur)) {
			if (count >= quorum && qgot == 0) {
				qgot = count;
				qsize = cur;
			}
			if (count > best) {
				best = count;
				best_size = cur;
			}
			count = 0;
			memset(seen, 0, n);
		}
		if (rc != SQLITE_ROW)
			break;
		cur = sz;
		{
			const char *wname = (const char *)sqlite3_column_text(s, 1);
			const char *line = (const char *)sqlite3_column_text(s, 2);
			const char *note = (const char *)sqlite3_column_text(s, 3);
			size_t text_len;
			uint64_t t;
			struct cg_err sub;

			for (i = 0; i < n; i++) {
				if (strcmp(w[i].name, wname) != 0)
					continue;
				cg_err_clear(&sub);
				if (audit_keychain_check(&kc, note, strlen(note), &ck, &text_len, &sub) != 0) {
					r = cg_err_set(err, CG_ERR_VERIFY, "%s: checkpoint at size %llu: %s",
					    store_path(st), (unsigned long long)sz, sub.msg);
					goto out;
				}
				r = note_verify_cosig_line(note, text_len, line, strlen(line), w[i].name, w[i].pub, &t,
				    &sub);
				if (r == CG_ERR_NOTFOUND)
					continue;
				if (r != 0) {
					r = cg_err_set(err, CG_ERR_VERIFY, "%s: cosignature of the checkpoint at size "
					    "%llu: %s", store_path(st), (unsigned long long)sz, sub.msg);
					goto out;
				}
				/* Count a witness once, however often it is named or stored. */
				for (j = 0; j < n; j++) {
					if (strcmp(w[i].name, w[j].name) == 0 && memcmp(w[i].pub, w[j].pub, 32) == 0)
						break;
				}
				if (!seen[j]) {
					seen[j] = 1;
					count++;
				}
			}
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		r = audit_dberr(st, "read cosignatures", err);
		goto out;
	}
	if (qgot == 0) {
		if (best == 0)
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: no checkpoint is cosigned by any of the named witnesses "
			    "(quorum %zu)", store_path(st), quorum);
		else
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: no checkpoint is cosigned by %zu of the named "
			    "witnesses: at most %zu (checkpoint at size %llu)", store_path(st), quorum, best,
			    (unsigned long long)best_size);
		goto out;
	}
	*size = qsize;
	*got = qgot;
	r = 0;
out:
	free(seen);
	sqlite3_finalize(s);
	return r;
}

