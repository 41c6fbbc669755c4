/* audit_erase.c - see audit.h; erasure (audit_int.h) */
#include "audit/audit.h"
#include "audit/audit_int.h"

#include <stdlib.h>

/* ---- erasure ------------------------------------------------------------- */

struct audit_range {
	uint64_t from, to;
};

int
audit_erase(struct audit *a, uint64_t from, uint64_t to, int64_t before, const char *reason, uint64_t *erased,
    struct cg_err *err)
{
	Crossgate__AuditEvent ev = CROSSGATE__AUDIT_EVENT__INIT;
	Crossgate__AuditEvent__CountsEntry c[3], *cp[3];
	struct audit_range *ranges = NULL, *tmp;
	sqlite3_stmt *sel = NULL, *upd = NULL, *mark = NULL;
	size_t n_ranges = 0, cap = 0, i;
	uint64_t by, count = 0, lo = 0, hi = 0;
	int rc, r, in_txn = 0;

	*erased = 0;
	if (from >= to)
		return cg_err_set(err, CG_ERR_ARG, "audit erase: empty range");
	if ((r = store_begin(a->st, err)) != 0)
		return r;
	in_txn = 1;
	if ((r = audit_sync(a, err)) != 0)
		goto out;
	by = a->pending.size;   /* the seq the audit-erase event will get */
	if (to > by)
		to = by;
	if ((r = audit_prepare(a->st, "SELECT seq, event FROM audit_events WHERE seq >= ?1 AND seq < ?2 "
	    "AND length(event) > 0 ORDER BY seq", &sel, err)) != 0 ||
	    (r = audit_prepare(a->st, "UPDATE audit_events SET event = x'' WHERE seq >= ?1 AND seq < ?2", &upd, err))
	    != 0 ||
	    (r = audit_prepare(a->st, "INSERT INTO audit_erased(seq, erase_event) SELECT seq, ?3 FROM audit_events "
	    "WHERE seq >= ?1 AND seq < ?2", &mark, err)) != 0)
		goto out;
	sqlite3_bind_int64(sel, 1, (sqlite3_int64)from);
	sqlite3_bind_int64(sel, 2, (sqlite3_int64)to);
	/* Collected first as runs of seqs: the table is not updated under a running scan. */
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		struct audit_view v;
		uint64_t seq = (uint64_t)sqlite3_column_int64(sel, 0);

		if (audit_view_parse(sqlite3_column_blob(sel, 1), (size_t)sqlite3_column_bytes(sel, 1), &v) != 0) {
			r = cg_err_set(err, CG_ERR_VERIFY, "%s: event %llu is not a valid audit event; run 'crossgate "
			    "audit verify'", store_path(a->st), (unsigned long long)seq);
			goto out;
		}
		/* Erase and key-rotate events stay: they account for erased payloads and vouch for keys. */
		if (audit_view_is(&v, AUDIT_ERASE_ACTION) || audit_view_is(&v, AUDIT_ROTATE_ACTION) || v.time >= before)
			continue;
		if (n_ranges > 0 && ranges[n_ranges - 1].to == seq) {
			ranges[n_ranges - 1].to = seq + 1;
		} else {
			if (n_ranges == cap) {
				cap = cap ? 2 * cap : 64;
				if ((tmp = realloc(ranges, cap * sizeof(*ranges))) == NULL) {
					r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
					goto out;
				}
				ranges = tmp;
			}
			ranges[n_ranges].from = seq;
			ranges[n_ranges].to = seq + 1;
			n_ranges++;
		}
		if (count == 0)
			lo = seq;
		hi = seq + 1;
		count++;
	}
	if (rc != SQLITE_DONE) {
		r = audit_dberr(a->st, "read", err);
		goto out;
	}
	sqlite3_finalize(sel);
	sel = NULL;
	if (count == 0) {
		r = 0;
		goto out;
	}
	for (i = 0; i < n_ranges; i++) {
		sqlite3_bind_int64(upd, 1, (sqlite3_int64)ranges[i].from);
		sqlite3_bind_int64(upd, 2, (sqlite3_int64)ranges[i].to);
		if ((r = audit_step(a->st, upd, "erase", err)) != 0)
			goto out;
		sqlite3_bind_int64(mark, 1, (sqlite3_int64)ranges[i].from);
		sqlite3_bind_int64(mark, 2, (sqlite3_int64)ranges[i].to);
		sqlite3_bind_int64(mark, 3, (sqlite3_int64)by);
		if ((r = audit_step(a->st, mark, "record erasure", err)) != 0)
			goto out;
	}
	for (i = 0; i < 3; i++) {
		crossgate__audit_event__counts_entry__init(&c[i]);
		cp[i] = &c[i];
	}
	c[0].key = (char *)"erased";
	c[0].value = count;
	c[1].key = (char *)"from";
	c[1].value = lo;
	c[2].key = (char *)"to";
	c[2].value = hi;
	ev.actor = (char *)"operator";
	ev.action = (char *)AUDIT_ERASE_ACTION;
	ev.outcome = (char *)"ok";
	ev.reason = (char *)(reason != NULL ? reason : "retention");
	ev.counts = cp;
	ev.n_counts = 3;
	if ((r = audit_append(a, &ev, err)) != 0)
		goto out;
	if (ev.seq != by) {
		r = cg_err_set(err, CG_ERR_INTERNAL, "audit erase: the erase event moved");
		goto out;
	}
	if ((r = store_commit(a->st, err)) != 0)
		goto out;
	in_txn = 0;
	audit_txn_end(a, 1);
	*erased = count;
	/* The WAL still holds the old pages until checkpointed. */
	r = store_checkpoint(a->st, err);
out:
	if (in_txn) {
		store_rollback(a->st);
		audit_txn_end(a, 0);
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	sqlite3_finalize(mark);
	free(ranges);
	return r;
}

