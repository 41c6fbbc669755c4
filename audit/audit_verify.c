/* audit_verify.c - see audit.h; verification (audit_int.h) */
#include "audit/audit.h"
#include "audit/audit_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- verification ------------------------------------------------------------ */

/* Check one stored checkpoint's signature and shape; root comparison is the caller's. */
static int
audit_check_note(const char *path, const struct audit_keychain *kc, uint64_t size, const char *note,
    size_t note_len, struct checkpoint *cp, struct cg_err *err)
{
	struct cg_err sub;
	size_t text_len;

	cg_err_clear(&sub);
	if (audit_keychain_check(kc, note, note_len, cp, &text_len, &sub) != 0)
		return cg_err_set(err, CG_ERR_VERIFY, "%s: %s", path, sub.msg);
	if (cp->size != size)
		return cg_err_set(err, CG_ERR_VERIFY, "%s: checkpoint stored at size %llu signs size %llu", path,
		    (unsigned long long)size, (unsigned long long)cp->size);
	return 0;
}

/* Erased events waiting for the audit-erase event that accounts for them. */
struct audit_pending {
	uint64_t by, count, lo, hi;
};

struct audit_pendings {
	struct audit_pending *v;
	size_t n, cap;
};

static struct audit_pending *
audit_pending_find(struct audit_pendings *p, uint64_t by)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		if (p->v[i].by == by)
			return &p->v[i];
	}
	return NULL;
}

static int
audit_pending_add(struct audit_pendings *p, uint64_t by, uint64_t seq)
{
	struct audit_pending *e = audit_pending_find(p, by), *tmp;

	if (e == NULL) {
		if (p->n == p->cap) {
			size_t cap = p->cap ? 2 * p->cap : 8;

			if ((tmp = realloc(p->v, cap * sizeof(*tmp))) == NULL)
				return -1;
			p->v = tmp;
			p->cap = cap;
		}
		e = &p->v[p->n++];
		e->by = by;
		e->count = 0;
		e->lo = seq;
	}
	e->count++;
	e->hi = seq + 1;
	return 0;
}

/* An audit-erase event must claim exactly the erased events that name it. */
static int
audit_check_erase_event(const char *path, uint64_t seq, const unsigned char *bytes, size_t len,
    const struct audit_view *v, struct audit_pendings *p, int copy, uint64_t *kept, struct cg_err *err)
{
	struct audit_pending *e = audit_pending_find(p, seq), none = { seq, 0, 0, 0 };
	Crossgate__AuditEvent *ev;
	uint64_t claimed = 0, from = 0, to = 0;
	size_t i;
	int r = 0;

	if (e == NULL)
		e = &none;
	if (!audit_view_is(v, AUDIT_ERASE_ACTION)) {
		if (e->count > 0)
			return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is erased and names event %llu as its "
			    "erasure, which is not an audit-erase event", path, (unsigned long long)e->lo,
			    (unsigned long long)seq);
		return 0;
	}
	if ((ev = crossgate__audit_event__unpack(NULL, len, bytes)) == NULL)
		return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is not a valid audit event", path,
		    (unsigned long long)seq);
	for (i = 0; i < ev->n_counts; i++) {
		if (strcmp(ev->counts[i]->key, "erased") == 0)
			claimed = ev->counts[i]->value;
		else if (strcmp(ev->counts[i]->key, "from") == 0)
			from = ev->counts[i]->value;
		else if (strcmp(ev->counts[i]->key, "to") == 0)
			to = ev->counts[i]->value;
	}
	crossgate__audit_event__free_unpacked(ev, NULL);
	/* A copy keeps what the gateway erased after copying it: fewer marked than claimed is fine there. */
	if (copy && claimed > e->count && (e->count == 0 || (e->lo >= from && e->hi <= to)))
		*kept += claimed - e->count;
	else if (claimed != e->count || (e->count > 0 && (e->lo < from || e->hi > to)))
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: audit-erase event %llu says it erased %llu events in "
		    "[%llu, %llu), but %llu events in [%llu, %llu) are marked erased by it", path,
		    (unsigned long long)seq, (unsigned long long)claimed, (unsigned long long)from,
		    (unsigned long long)to, (unsigned long long)e->count, (unsigned long long)e->lo,
		    (unsigned long long)e->hi);
	if (e != &none)
		*e = p->v[--p->n];
	return r;
}

struct audit_span {
	uint64_t first, end;
};

static int
audit_load_spans(struct store *st, struct audit_span **out, size_t *n, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	struct audit_span *v = NULL, *tmp;
	size_t cap = 0;
	int rc, r;

	*out = NULL;
	*n = 0;
	if ((r = audit_prepare(st, "SELECT first, end FROM audit_spans ORDER BY end", &s, err)) != 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			if ((tmp = realloc(v, cap * sizeof(*v))) == NULL) {
				r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
				goto out;
			}
			v = tmp;
		}
		v[*n].first = (uint64_t)sqlite3_column_int64(s, 0);
		v[*n].end = (uint64_t)sqlite3_column_int64(s, 1);
		(*n)++;
	}
	if (rc != SQLITE_DONE) {
		r = audit_dberr(st, "read spans", err);
		goto out;
	}
	*out = v;
	v = NULL; /* transferred */
	r = 0;
out:
	free(v);
	sqlite3_finalize(s);
	return r;
}

/*
 * Verification streams the log in batches through two threads: this one
 * reads the rows (SQLite) and walks the tree, a helper hashes the next
 * batch's leaves meanwhile.  The leaf hashes are most of the work, and one
 * connection must not be used from two threads, so that is the split.
 */
#define AUDIT_VBATCH 8192

struct audit_vslot {
	uint64_t seq;
	size_t off, len;
	int has_leaf;
	unsigned char leaf_col[MERKLE_HASH_LEN];
};

struct audit_vbatch {
	struct audit_vslot *slots;
	size_t n;
	unsigned char *bytes;
	size_t used, cap;
	unsigned char (*leaf)[MERKLE_HASH_LEN];
};

static void
audit_vbatch_free(struct audit_vbatch *b)
{
	free(b->slots);
	free(b->bytes);
	free(b->leaf);
	memset(b, 0, sizeof(*b));
}

/* Up to AUDIT_VBATCH rows; *more is 0 once the table is read. */
static int
audit_vbatch_read(struct store *st, sqlite3_stmt *ev, struct audit_vbatch *b, int *more, struct cg_err *err)
{
	int rc = SQLITE_DONE;

	b->n = 0;
	b->used = 0;
	if (b->slots == NULL && ((b->slots = calloc(AUDIT_VBATCH, sizeof(*b->slots))) == NULL ||
	    (b->leaf = calloc(AUDIT_VBATCH, MERKLE_HASH_LEN)) == NULL))
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	while (b->n < AUDIT_VBATCH && (rc = sqlite3_step(ev)) == SQLITE_ROW) {
		struct audit_vslot *s = &b->slots[b->n];
		size_t len = (size_t)sqlite3_column_bytes(ev, 1);

		if (len > b->cap - b->used) {
			size_t cap = b->cap ? b->cap : 1 << 20;
			unsigned char *tmp;

			while (len > cap - b->used)
				cap *= 2;
			if ((tmp = realloc(b->bytes, cap)) == NULL)
				return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			b->bytes = tmp;
			b->cap = cap;
		}
		s->seq = (uint64_t)sqlite3_column_int64(ev, 0);
		s->off = b->used;
		s->len = len;
		if (len > 0)
			memcpy(b->bytes + b->used, sqlite3_column_blob(ev, 1), len);
		b->used += len;
		s->has_leaf = sqlite3_column_bytes(ev, 2) == MERKLE_HASH_LEN;
		if (s->has_leaf)
			memcpy(s->leaf_col, sqlite3_column_blob(ev, 2), MERKLE_HASH_LEN);
		b->n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return audit_dberr(st, "read", err);
	*more = rc == SQLITE_ROW;
	return 0;
}

static void *
audit_vbatch_hash(void *arg)
{
	struct audit_vbatch *b = arg;
	size_t i;

	for (i = 0; i < b->n; i++)
		merkle_leaf_hash(b->bytes + b->slots[i].off, b->slots[i].len, b->leaf[i]);
	return NULL;
}

/* Everything the walk over the events carries from one event to the next. */
struct audit_vstate {
	const char *path;
	struct audit_keychain *kc;
	struct audit_report *rep;
	sqlite3_stmt *cp, *nd, *er, *keys;
	int cp_rc, er_rc, keys_rc, nodes_ok, bad_node, last_erased, copy;
	uint64_t cp_size, er_seq, last_cp, bad_leaf, bad_node_idx, seq;
	unsigned int bad_node_level;
	struct merkle_frontier f;
	struct audit_pendings pend;
	struct audit_span *spans;
	size_t n_spans, span_i;
};

static int
audit_verify_event(struct audit_vstate *s, const struct audit_vslot *slot, const unsigned char *bytes,
    const unsigned char hashed[MERKLE_HASH_LEN], struct cg_err *err)
{
	unsigned char leaf[MERKLE_HASH_LEN], root[MERKLE_HASH_LEN], nodes[64][MERKLE_HASH_LEN];
	const char *path = s->path;
	struct checkpoint ck;
	uint64_t seq = slot->seq;
	size_t len = slot->len;
	unsigned int k, l;
	int is_erased, r;

	s->seq = seq;
	if (seq != s->f.size)
		return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is missing (the log jumps to %llu)", path,
		    (unsigned long long)s->f.size, (unsigned long long)seq);
	if (s->er_rc == SQLITE_ROW && s->er_seq < seq)
		return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is listed as erased but still holds its payload",
		    path, (unsigned long long)s->er_seq);
	is_erased = s->er_rc == SQLITE_ROW && s->er_seq == seq && len == 0;
	if (is_erased) {
		uint64_t by = (uint64_t)sqlite3_column_int64(s->er, 1);

		/* Nothing to rehash: the stored leaf hash is the event, and the checkpoints check it. */
		if (!slot->has_leaf)
			return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is erased and its leaf hash is missing",
			    path, (unsigned long long)seq);
		if (by <= seq)
			return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is erased by event %llu, which is not a "
			    "later one", path, (unsigned long long)seq, (unsigned long long)by);
		if (audit_pending_add(&s->pend, by, seq) != 0)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		memcpy(leaf, slot->leaf_col, MERKLE_HASH_LEN);
		s->rep->erased++;
		s->er_rc = sqlite3_step(s->er);
		if (s->er_rc == SQLITE_ROW)
			s->er_seq = (uint64_t)sqlite3_column_int64(s->er, 0);
	} else {
		struct audit_view v;

		if (s->er_rc == SQLITE_ROW && s->er_seq == seq)
			return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is listed as erased but still holds its "
			    "payload", path, (unsigned long long)seq);
		if (audit_view_parse(bytes, len, &v) != 0)
			return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is not a valid audit event", path,
			    (unsigned long long)seq);
		if (v.seq != seq)
			return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu says it is event %llu (moved)", path,
			    (unsigned long long)seq, (unsigned long long)v.seq);
		memcpy(leaf, hashed, MERKLE_HASH_LEN);
		if (s->bad_leaf == AUDIT_NONE && (!slot->has_leaf || memcmp(slot->leaf_col, leaf, MERKLE_HASH_LEN) != 0))
			s->bad_leaf = seq;
		if ((r = audit_check_erase_event(path, seq, bytes, len, &v, &s->pend, s->copy, &s->rep->kept, err)) != 0)
			return r;
		if (audit_view_is(&v, AUDIT_ROTATE_ACTION)) {
			/* Trusted once the checkpoint right after it verifies under the old key (below). */
			if (!(s->cp_rc == SQLITE_ROW && s->cp_size == seq + 1))
				return cg_err_set(err, CG_ERR_VERIFY, "%s: key-rotate event %llu has no checkpoint of its "
				    "own signed by the old key", path, (unsigned long long)seq);
			if (s->keys_rc != SQLITE_ROW || (uint64_t)sqlite3_column_int64(s->keys, 0) != seq)
				return cg_err_set(err, CG_ERR_VERIFY, "%s: key-rotate event %llu is missing from the key "
				    "index (audit_keys)", path, (unsigned long long)seq);
			if ((r = audit_keychain_apply(s->kc, seq, bytes, len, err)) != 0)
				return cg_err_prefix(err, "%s", path);
			if (sqlite3_column_bytes(s->keys, 1) != KEYFILE_ID_LEN || sqlite3_column_bytes(s->keys, 2) != 32 ||
			    memcmp(sqlite3_column_blob(s->keys, 1), s->kc->keys[s->kc->n - 1].id, KEYFILE_ID_LEN) != 0 ||
			    memcmp(sqlite3_column_blob(s->keys, 2), s->kc->keys[s->kc->n - 1].pub, 32) != 0)
				return cg_err_set(err, CG_ERR_VERIFY, "%s: the key index (audit_keys) does not match "
				    "key-rotate event %llu", path, (unsigned long long)seq);
			s->keys_rc = sqlite3_step(s->keys);
		} else if (s->keys_rc == SQLITE_ROW && (uint64_t)sqlite3_column_int64(s->keys, 0) <= seq) {
			return cg_err_set(err, CG_ERR_VERIFY, "%s: the key index (audit_keys) names event %llu, which is "
			    "not a key-rotate event", path, (unsigned long long)sqlite3_column_int64(s->keys, 0));
		}
	}
	s->last_erased = is_erased;
	merkle_frontier_append_nodes(&s->f, leaf, nodes, &k);
	/* The stored nodes are what proofs are made of: they must be these. */
	for (l = 1; l <= k && s->nodes_ok; l++) {
		int nd_rc = sqlite3_step(s->nd);

		if (nd_rc != SQLITE_ROW || sqlite3_column_int64(s->nd, 0) != audit_node_id(l, seq >> l) ||
		    sqlite3_column_bytes(s->nd, 1) != MERKLE_HASH_LEN ||
		    memcmp(sqlite3_column_blob(s->nd, 1), nodes[l - 1], MERKLE_HASH_LEN) != 0) {
			s->nodes_ok = 0;
			s->bad_node = 1;
			s->bad_node_level = l;
			s->bad_node_idx = seq >> l;
		}
	}

	while (s->span_i < s->n_spans && s->spans[s->span_i].end < s->f.size)
		s->span_i++;
	if (s->cp_rc == SQLITE_ROW && s->cp_size == s->f.size) {
		const char *note = (const char *)sqlite3_column_text(s->cp, 1);

		if ((r = audit_check_note(path, s->kc, s->cp_size, note, (size_t)sqlite3_column_bytes(s->cp, 1),
		    &ck, err)) != 0)
			return r;
		merkle_frontier_root(&s->f, root);
		if (memcmp(ck.root, root, MERKLE_HASH_LEN) != 0) {
			if (s->bad_leaf != AUDIT_NONE || s->f.size - s->last_cp == 1)
				return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu%s does not match the signed checkpoint "
				    "at size %llu: %s", path,
				    (unsigned long long)(s->bad_leaf != AUDIT_NONE ? s->bad_leaf : seq),
				    s->bad_leaf == AUDIT_NONE && s->last_erased ? " (erased)" : "",
				    (unsigned long long)s->cp_size, s->bad_leaf == AUDIT_NONE && s->last_erased ?
				    "its stored leaf hash was changed" : "the event was changed, removed, reordered or inserted");
			return cg_err_set(err, CG_ERR_VERIFY, "%s: events %llu to %llu do not match the signed checkpoint "
			    "at size %llu: one of them was changed, removed, reordered or inserted", path,
			    (unsigned long long)s->last_cp, (unsigned long long)seq, (unsigned long long)s->cp_size);
		}
		if (s->bad_leaf != AUDIT_NONE)
			return cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu: the stored leaf hash does not match the "
			    "event (the leaf column was changed; proofs would fail)", path, (unsigned long long)s->bad_leaf);
		if (s->bad_node)
			return cg_err_set(err, CG_ERR_VERIFY, "%s: the stored tree node at level %u, index %llu is missing "
			    "or does not match the events (proofs would fail)", path, s->bad_node_level,
			    (unsigned long long)s->bad_node_idx);
		snprintf(s->rep->latest_checkpoint, sizeof(s->rep->latest_checkpoint), "%s", note);
		s->rep->checkpoints++;
		s->last_cp = s->f.size;
		s->cp_rc = sqlite3_step(s->cp);
		if (s->cp_rc == SQLITE_ROW)
			s->cp_size = (uint64_t)sqlite3_column_int64(s->cp, 0);
	} else if (s->cp_rc == SQLITE_ROW && s->cp_size < s->f.size) {
		return cg_err_set(err, CG_ERR_VERIFY, "%s: checkpoint at size %llu out of order", path,
		    (unsigned long long)s->cp_size);
	} else if (!(s->span_i < s->n_spans && s->spans[s->span_i].first < s->f.size &&
	    s->f.size < s->spans[s->span_i].end)) {
		return cg_err_set(err, CG_ERR_VERIFY, "%s: no signed checkpoint for size %llu: event %llu was inserted "
		    "or its checkpoint removed", path, (unsigned long long)s->f.size, (unsigned long long)seq);
	}
	return 0;
}

int
audit_verify(struct store *st, const struct keyfile_key *pub, struct audit_report *rep, struct cg_err *err)
{
	struct audit_vstate s;
	struct audit_vbatch b[2];
	sqlite3_stmt *ev = NULL;
	unsigned char flag[1];
	size_t flag_len;
	pthread_t th;
	size_t i;
	int r, more = 1, cur = 0, running = 0;

	memset(rep, 0, sizeof(*rep));
	memset(&s, 0, sizeof(s));
	memset(b, 0, sizeof(b));
	if ((r = audit_keychain_init(&rep->keys, pub, err)) != 0)
		return r;
	if ((r = audit_schema(st, err)) != 0)
		return r;
	if ((r = audit_meta_get(st, "copy", flag, sizeof(flag), &flag_len, err)) < 0)
		return r;
	s.copy = r == 1;
	s.path = store_path(st);
	s.kc = &rep->keys;
	s.rep = rep;
	s.nodes_ok = 1;
	s.bad_leaf = AUDIT_NONE;
	merkle_frontier_init(&s.f);
	if ((r = audit_prepare(st, "SELECT seq, event, leaf FROM audit_events ORDER BY seq", &ev, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT size, note FROM audit_checkpoints ORDER BY size", &s.cp, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT id, hash FROM audit_nodes ORDER BY id", &s.nd, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT seq, erase_event FROM audit_erased ORDER BY seq", &s.er, err)) != 0 ||
	    (r = audit_prepare(st, "SELECT seq, key_id, pub FROM audit_keys ORDER BY seq", &s.keys, err)) != 0 ||
	    (r = audit_load_spans(st, &s.spans, &s.n_spans, err)) != 0)
		goto out;
	s.keys_rc = sqlite3_step(s.keys);
	s.cp_rc = sqlite3_step(s.cp);
	if (s.cp_rc == SQLITE_ROW)
		s.cp_size = (uint64_t)sqlite3_column_int64(s.cp, 0);
	s.er_rc = sqlite3_step(s.er);
	if (s.er_rc == SQLITE_ROW)
		s.er_seq = (uint64_t)sqlite3_column_int64(s.er, 0);

	if ((r = audit_vbatch_read(st, ev, &b[0], &more, err)) != 0)
		goto out;
	audit_vbatch_hash(&b[0]);
	while (b[cur].n > 0) {
		struct audit_vbatch *next = &b[cur ^ 1];

		next->n = 0;
		if (more) {
			if ((r = audit_vbatch_read(st, ev, next, &more, err)) != 0)
				goto out;
			running = pthread_create(&th, NULL, audit_vbatch_hash, next) == 0;
			if (!running)
				audit_vbatch_hash(next);
		}
		for (i = 0; i < b[cur].n; i++) {
			if ((r = audit_verify_event(&s, &b[cur].slots[i], b[cur].bytes + b[cur].slots[i].off, b[cur].leaf[i],
			    err)) != 0)
				goto out;
		}
		if (running) {
			pthread_join(th, NULL);
			running = 0;
		}
		cur ^= 1;
	}
	if (s.cp_rc == SQLITE_ROW) {
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: a checkpoint signs size %llu but the log holds only %llu "
		    "events: events were removed from the end", s.path, (unsigned long long)s.cp_size,
		    (unsigned long long)s.f.size);
		goto out;
	}
	if (s.cp_rc != SQLITE_DONE) {
		r = audit_dberr(st, "read checkpoints", err);
		goto out;
	}
	if (s.last_cp != s.f.size) {
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: no signed checkpoint for size %llu: event %llu was inserted "
		    "or its checkpoint removed", s.path, (unsigned long long)s.f.size, (unsigned long long)s.seq);
		goto out;
	}
	if (s.er_rc == SQLITE_ROW) {
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is listed as erased but is not in the log", s.path,
		    (unsigned long long)s.er_seq);
		goto out;
	}
	if (s.pend.n > 0) {
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu was erased, but no audit-erase event accounts "
		    "for it", s.path, (unsigned long long)s.pend.v[0].lo);
		goto out;
	}
	if (s.keys_rc == SQLITE_ROW) {
		r = cg_err_set(err, CG_ERR_VERIFY, "%s: the key index (audit_keys) names event %llu, which is not a "
		    "key-rotate event of the log", s.path, (unsigned long long)sqlite3_column_int64(s.keys, 0));
		goto out;
	}
	rep->events = s.f.size;
	merkle_frontier_root(&s.f, rep->root);
	r = 0;
out:
	if (running)
		pthread_join(th, NULL);
	if (r != 0) {
		uint64_t erased = rep->erased;

		memset(rep, 0, sizeof(*rep));
		rep->erased = erased;
	}
	sqlite3_finalize(s.keys);
	audit_vbatch_free(&b[0]);
	audit_vbatch_free(&b[1]);
	free(s.pend.v);
	free(s.spans);
	sqlite3_finalize(ev);
	sqlite3_finalize(s.cp);
	sqlite3_finalize(s.nd);
	sqlite3_finalize(s.er);
	return r;
}

