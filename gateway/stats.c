/* stats.c - see stats.h */
#include "gateway/stats.h"

#include <string.h>

int
stats_partner_get(struct store *st, const struct policy *pol, const char *partner, struct stats_partner *out,
    struct cg_err *err)
{
	sqlite3 *db = store_db(st);
	sqlite3_stmt *s = NULL;
	size_t i;
	int r = 0, rc;

	memset(out, 0, sizeof(*out));
	if (policy_partner_find(pol, partner) == NULL)
		return cg_err_set(err, CG_ERR_POLICY, "partner '%.64s' is not in the policy", partner);
	/* One pass: the consent bits are grouped, then spread over the purposes here. */
	if (sqlite3_prepare_v2(db, "SELECT consent_bits, count(*), min(consent_at), max(consent_at) FROM records "
	    "WHERE partner = ?1 GROUP BY consent_bits", -1, &s, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_text(s, 1, partner, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		uint32_t bits = (uint32_t)sqlite3_column_int64(s, 0);
		uint64_t n = (uint64_t)sqlite3_column_int64(s, 1);
		int64_t lo = sqlite3_column_int64(s, 2), hi = sqlite3_column_int64(s, 3);

		if (out->records == 0 || lo < out->oldest_consent)
			out->oldest_consent = lo;
		if (out->records == 0 || hi > out->newest_consent)
			out->newest_consent = hi;
		out->records += n;
		for (i = 0; i < pol->npurposes; i++)
			if (bits & (1u << i))
				out->with_purpose[i] += n;
	}
	if (rc != SQLITE_DONE)
		goto dberr;
	sqlite3_finalize(s);
	s = NULL;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM batches WHERE partner = ?1", -1, &s, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_text(s, 1, partner, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_ROW)
		goto dberr;
	out->batches = (uint64_t)sqlite3_column_int64(s, 0);
	goto out;
dberr:
	r = cg_err_set(err, CG_ERR_DB, "%s: counting records: %s", store_path(st), sqlite3_errmsg(db));
out:
	sqlite3_finalize(s);
	return r;
}
