/* fuzz_csv.c - libFuzzer harness for the CSV reader (base/csvfile.c). */
#include "base/csvfile.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csvfile *r = NULL;
	struct csvfile_row *row;
	struct cg_err err;
	uint64_t last_line = 0, last_number = 0, calls = 0;
	size_t i;
	int rc;

	if (csvfile_open_mem("fuzz.csv", (const char *)data, size, &r, &err) != 0)
		abort();
	for (;;) {
		rc = csvfile_next(r, &row, &err);
		/* Every call consumes input, so the number of results is bounded. */
		if (++calls > (uint64_t)size + 2)
			abort();
		if (csvfile_offset(r) > size || csvfile_size(r) != size)
			abort();
		if (rc == 0)
			break;
		if (rc < 0) {
			if (row != NULL || err.code != rc || strncmp(err.msg, "fuzz.csv:", 9) != 0)
				abort();
			if (rc == CG_ERR_FORMAT || rc == CG_ERR_LIMIT)
				continue;
			break;
		}
		if (rc != 1 || row == NULL || row->nfields == 0 || row->nfields > CSVFILE_FIELDS_MAX)
			abort();
		if (row->line < 1 || row->line < last_line || row->number <= last_number)
			abort();
		last_line = row->line;
		last_number = row->number;
		for (i = 0; i < row->nfields; i++)
			if (row->lens[i] > CSVFILE_FIELD_MAX || strlen(row->fields[i]) != row->lens[i])
				abort();
	}
	if (rc == 0 && csvfile_offset(r) != size)
		abort();
	csvfile_free(r);
	return 0;
}
