/*
 * fuzz_outcomes.c - libFuzzer harness for the outcome CSV's header and rows
 * (agent/outcomes.c): whatever the bytes, a row is either refused with a
 * positioned message or yields an outcome within the format's rules
 * (proto/batch.h batch_outcome_check).
 */
#include "agent/outcomes.h"
#include "proto/batch.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csvfile *f = NULL;
	struct csvfile_row *row;
	struct outcomes_header h;
	struct outcome_row o;
	struct cg_err err;
	int rc, have_header = 0;
	uint64_t calls = 0;

	if (csvfile_open_mem("fuzz.csv", (const char *)data, size, &f, &err) != 0)
		abort();
	for (;;) {
		if (++calls > (uint64_t)size + 2)
			abort();
		rc = csvfile_next(f, &row, &err);
		if (rc == 0)
			break;
		if (rc < 0) {
			if (rc == CG_ERR_FORMAT || rc == CG_ERR_LIMIT)
				continue;
			break;
		}
		if (!have_header) {
			rc = outcomes_header_parse(row, "user_id", "fuzz.csv", &h, &err);
			if (rc != 0) {
				if (rc != CG_ERR_FORMAT || strncmp(err.msg, "fuzz.csv:", 9) != 0)
					abort();
				break;
			}
			if (h.nfields != 4)
				abort();
			have_header = 1;
			continue;
		}
		rc = outcomes_row_parse(&h, row, "fuzz.csv", &o, &err);
		if (rc != 0) {
			if (rc != CG_ERR_FORMAT || strncmp(err.msg, "fuzz.csv:", 9) != 0 || o.user_id != NULL)
				abort();
			continue;
		}
		{
			Crossgate__Outcome oc = CROSSGATE__OUTCOME__INIT;

			oc.experiment = (char *)"fuzz";
			oc.converted = o.converted;
			oc.value_cents = o.value_cents;
			oc.at = o.at;
			if (o.user_id == NULL || o.user_id_len == 0 || strlen(o.user_id) != o.user_id_len ||
			    (o.converted != 0 && o.converted != 1) || batch_outcome_check(&oc, &err) != 0)
				abort();
		}
	}
	csvfile_free(f);
	return 0;
}
