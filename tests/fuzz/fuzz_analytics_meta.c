/* fuzz_analytics_meta.c - libFuzzer harness for the provenance sidecar reader (analytics/provenance.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/provenance.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct provenance p;
	struct cg_err err;
	size_t i;
	int rc;

	rc = provenance_parse("fuzz.json", (const char *)data, size, &p, &err);
	if (rc != 0) {
		if (p.known || p.audit_index != -1 || strncmp(err.msg, "fuzz.json", 9) != 0)
			abort();
		return 0;
	}
	if (!p.known || p.export_id[0] == '\0' || p.purpose[0] == '\0' || p.policy_hash[0] == '\0')
		abort();
	/* What reaches HTML and CSV is printable ASCII only. */
	for (i = 0; p.purpose[i] != '\0'; i++)
		if ((unsigned char)p.purpose[i] < 0x20 || (unsigned char)p.purpose[i] > 0x7e)
			abort();
	return 0;
}
