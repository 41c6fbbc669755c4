/*
 * test_receipt.c - receipts (agent/receipt.c) against the real pipeline: the
 * agent's tree paths and the gateway's committed root agree for every tree
 * size from 1 to 9, and 33 (powers of two and not), every user's receipt verifies
 * for that user only, and each tampering fails with its reason.
 */
#include <sys/stat.h>
#include <sodium.h>

#include "cgtest.h"
#include "world.h"
#include "agent/receipt.h"
#include "audit/receipt.h"

/* A batch withdrawing n users (u0..u{n-1}, email u<i>.x@gmail.com) after they were packed. */
static void
one_size(struct world *w, int n)
{
	char name[64], dir[WORLD_PATH_MAX], csv[WORLD_PATH_MAX], batch[WORLD_PATH_MAX], file[WORLD_PATH_MAX + 128],
	    id[64], hex[33], *text;
	struct pack_opts o;
	struct pack_stats ps;
	struct ingest_result res;
	struct audit_receipt_result rr;
	struct cg_err err;
	unsigned char *proof = NULL;
	size_t len = 0, tl;
	int i, j, k;

	text = malloc(256 + (size_t)n * 128);
	CHECK(text != NULL);
	if (text == NULL)
		return;
	strcpy(text, WORLD_K_HEADER);
	for (i = 0; i < n; i++) {
		tl = strlen(text);
		/* every purpose withdrawn; the identifiers as the partner writes them */
		snprintf(text + tl, 128, "u%d,U%d.X+news@GoogleMail.com,,25,CN-BJ,,2024-06-0%d,100,finance\n", i, i,
		    1 + i % 9);
	}
	snprintf(name, sizeof(name), "r%d", n);
	world_path(w, name, dir);
	CHECK_EQ_INT(mkdir(dir, 0700), 0);
	snprintf(name, sizeof(name), "r%d.csv", n);
	world_write(w, name, text);
	free(text);
	o = world_pack_opts(w, "k", csv, name, batch, "r.batch");
	o.receipts = dir;
	CHECK_EQ_INT(pack_csv(&o, &ps, &err), 0);
	CHECK_EQ_INT(ps.withdrawn, (uint64_t)n);
	CHECK_EQ_INT(ps.receipts, (uint64_t)n);
	CHECK_EQ_INT(world_ingest(w, NULL, "r.batch", &res, &err), 0);
	CHECK_EQ_INT(res.withdrawn, (uint64_t)n);
	CHECK_EQ_INT(audit_receipt_prove(w->st, ps.batch_id, &proof, &len, &err), 0);
	sodium_bin2hex(hex, sizeof(hex), ps.batch_id, 16);
	for (i = 0; i < n; i++) {
		Crossgate__Receipt *r = NULL;

		snprintf(file, sizeof(file), "%s/%s-u%d.receipt", dir, hex, i);
		CHECK_EQ_INT(receipt_attach(file, proof, len, &err), 0);
		CHECK_EQ_INT(receipt_read(file, &r, &err), 0);
		if (r == NULL)
			continue;
		CHECK_EQ_INT(r->leaf_index, (uint64_t)i);
		CHECK_EQ_INT(r->tree_size, (uint64_t)n);
		CHECK_EQ_INT(r->n_withdrawn, 3);
		/* gmail rules: dots, +tags and googlemail do not matter, as at the partner */
		snprintf(id, sizeof(id), " u%dx@gmail.com", i);
		CHECK_EQ_INT(audit_receipt_verify(r, w->gwsignpub, id, NULL, 0, 0, NULL, &rr, &err), 0);
		for (k = 1; k < 3 && n > 1; k++) {
			j = (i + k) % n;
			if (j == i)
				continue;
			snprintf(id, sizeof(id), "u%dx@gmail.com", j);
			CHECK_EQ_INT(audit_receipt_verify(r, w->gwsignpub, id, NULL, 0, 0, NULL, &rr, &err), CG_ERR_VERIFY);
			CHECK_CONTAINS(err.msg, "is not in the batch's receipt tree");
		}
		/* another leaf index with the same path: no */
		r->leaf_index = (r->leaf_index + 1) % (uint64_t)(n + 1);
		snprintf(id, sizeof(id), "u%dx@gmail.com", i);
		CHECK_EQ_INT(audit_receipt_verify(r, w->gwsignpub, id, NULL, 0, 0, NULL, &rr, &err), CG_ERR_VERIFY);
		r->leaf_index = (uint64_t)i;
		/* a later time in the receipt than the one the gateway logged: no */
		r->withdrawn_at++;
		CHECK_EQ_INT(audit_receipt_verify(r, w->gwsignpub, id, NULL, 0, 0, NULL, &rr, &err), CG_ERR_VERIFY);
		r->withdrawn_at--;
		/* a key that is not the gateway's: no */
		CHECK_EQ_INT(audit_receipt_verify(r, w->kpub, id, NULL, 0, 0, NULL, &rr, &err), CG_ERR_VERIFY);
		CHECK_CONTAINS(err.msg, "the audit proof does not verify with this gateway key");
		crossgate__receipt__free_unpacked(r, NULL);
	}
	free(proof);
}

int
main(void)
{
	struct world w;
	struct cg_err err;
	Crossgate__Receipt *r = NULL;
	int n;

	if (sodium_init() < 0)
		return 1;
	world_init(&w, 2);
	world_open_store(&w);
	for (n = 1; n <= 9; n++)
		one_size(&w, n);
	one_size(&w, 33);   /* six levels, a lone leaf promoted at the top */

	/* What is not a receipt says so. */
	CHECK_EQ_INT(receipt_parse("hello", 5, &r, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "not a crossgate receipt");
	CHECK_EQ_INT(receipt_parse("CGR1:!!!", 8, &r, &err), CG_ERR_FORMAT);
	CHECK_EQ_INT(receipt_parse("CGR1:AAAA\n", 10, &r, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "not a crossgate-receipt/v1 message");
	CHECK(r == NULL);
	world_free(&w);
	CGT_DONE();
}
