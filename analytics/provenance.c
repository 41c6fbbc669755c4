/* provenance.c - see provenance.h */
#include "analytics/provenance.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
provenance_clear(struct provenance *p)
{
	memset(p, 0, sizeof(*p));
	p->audit_index = -1;
}

/* Copy a string member; hex members must be lowercase hex of even length. */
static int
provenance_text(const char *name, json_t *root, const char *key, int required, int hex, char *dst,
    struct cg_err *err)
{
	json_t *v = json_object_get(root, key);
	const char *s;
	size_t n, i;

	if (v == NULL) {
		if (required)
			return cg_err_set(err, CG_ERR_FORMAT, "%s: member %s is missing", name, key);
		return 0;
	}
	if (!json_is_string(v))
		return cg_err_set(err, CG_ERR_FORMAT, "%s: member %s is not a string", name, key);
	s = json_string_value(v);
	n = json_string_length(v);
	if (n > PROVENANCE_TEXT_MAX || strlen(s) != n)
		return cg_err_set(err, CG_ERR_FORMAT, "%s: member %s is longer than %d bytes or holds "
		    "a NUL", name, key, PROVENANCE_TEXT_MAX);
	if (required && n == 0)
		return cg_err_set(err, CG_ERR_FORMAT, "%s: member %s is empty", name, key);
	for (i = 0; hex && i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return cg_err_set(err, CG_ERR_FORMAT, "%s: member %s is not lowercase hex", name,
			    key);
	if (hex && n % 2 != 0)
		return cg_err_set(err, CG_ERR_FORMAT, "%s: member %s has an odd number of hex digits",
		    name, key);
	/* Printable ASCII only: these strings go into HTML and CSV as they are. */
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return cg_err_set(err, CG_ERR_FORMAT, "%s: member %s holds a control or "
			    "non-ASCII byte", name, key);
	memcpy(dst, s, n + 1);
	return 0;
}

/* "sensitive": one column name, or a list of them (kept joined by ", "). */
static int
provenance_sensitive(const char *name, json_t *root, char *dst, struct cg_err *err)
{
	json_t *v = json_object_get(root, "sensitive"), *one, *tmp;
	size_t i, n = 0;
	int rc;

	if (v == NULL || json_is_string(v))
		return provenance_text(name, root, "sensitive", 0, 0, dst, err);
	if (!json_is_array(v))
		return cg_err_set(err, CG_ERR_FORMAT, "%s: member sensitive is not a string or a list of "
		    "strings", name);
	json_array_foreach(v, i, one) {
		char col[PROVENANCE_TEXT_MAX + 1];
		size_t len;

		if ((tmp = json_pack("{s:O}", "sensitive", one)) == NULL)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		rc = provenance_text(name, tmp, "sensitive", 1, 0, col, err);
		json_decref(tmp);
		if (rc != 0)
			return rc;
		len = strlen(col);
		if (n + len + 2 > PROVENANCE_TEXT_MAX)
			return cg_err_set(err, CG_ERR_FORMAT, "%s: member sensitive is longer than %d bytes",
			    name, PROVENANCE_TEXT_MAX);
		if (n > 0) {
			memcpy(dst + n, ", ", 2);
			n += 2;
		}
		memcpy(dst + n, col, len + 1);
		n += len;
	}
	return 0;
}

static int
provenance_count(const char *name, json_t *root, const char *key, int required, uint64_t *dst,
    struct cg_err *err)
{
	json_t *v = json_object_get(root, key);

	if (v == NULL) {
		if (required)
			return cg_err_set(err, CG_ERR_FORMAT, "%s: member %s is missing", name, key);
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return cg_err_set(err, CG_ERR_FORMAT, "%s: member %s is not a non-negative integer",
		    name, key);
	*dst = (uint64_t)json_integer_value(v);
	return 0;
}

int
provenance_parse(const char *name, const char *buf, size_t len, struct provenance *out,
    struct cg_err *err)
{
	struct provenance p;
	json_error_t jerr;
	json_t *root = NULL;
	uint64_t idx = 0;
	int rc;

	provenance_clear(out);
	provenance_clear(&p);
	if (len > PROVENANCE_FILE_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "%s: larger than %d bytes", name, PROVENANCE_FILE_MAX);
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return cg_err_set(err, CG_ERR_FORMAT, "%s:%d:%d: %s", name, jerr.line, jerr.column,
		    jerr.text);
	if (!json_is_object(root)) {
		rc = cg_err_set(err, CG_ERR_FORMAT, "%s: not a JSON object", name);
		goto out;
	}
	/* A query's sidecar (`crossgate query`) names a query id and has no k or rows of its own. */
	p.query = json_object_get(root, "export_id") == NULL && json_object_get(root, "query_id") != NULL;
	if ((rc = provenance_text(name, root, p.query ? "query_id" : "export_id", 1, 1, p.export_id,
	    err)) != 0 ||
	    (rc = provenance_text(name, root, "purpose", 1, 0, p.purpose, err)) != 0 ||
	    (rc = provenance_text(name, root, "policy_hash", 1, 1, p.policy_hash, err)) != 0 ||
	    (rc = provenance_text(name, root, "created", 0, 0, p.created, err)) != 0 ||
	    (rc = provenance_sensitive(name, root, p.sensitive, err)) != 0 ||
	    (rc = provenance_text(name, root, "analyst", 0, 0, p.analyst, err)) != 0 ||
	    (rc = provenance_text(name, root, "left", 0, 0, p.left, err)) != 0 ||
	    (rc = provenance_text(name, root, "right", 0, 0, p.right, err)) != 0 ||
	    (rc = provenance_count(name, root, "k", !p.query, &p.k, err)) != 0 ||
	    (rc = provenance_count(name, root, "rows", !p.query, &p.rows, err)) != 0 ||
	    (rc = provenance_count(name, root, "l", 0, &p.l, err)) != 0 ||
	    (rc = provenance_count(name, root, "suppressed", 0, &p.suppressed, err)) != 0)
		goto out;
	if (json_object_get(root, "audit_index") != NULL) {
		if ((rc = provenance_count(name, root, "audit_index", 1, &idx, err)) != 0)
			goto out;
		p.audit_index = (int64_t)idx;
	}
	p.known = 1;
	*out = p;
	rc = 0;
 out:
	json_decref(root);
	return rc;
}

int
provenance_load(const char *path, struct provenance *out, struct cg_err *err)
{
	char *buf = NULL;
	size_t len;
	FILE *f;
	int rc;

	provenance_clear(out);
	if ((f = fopen(path, "rb")) == NULL) {
		if (errno == ENOENT)
			return cg_err_set(err, CG_ERR_NOTFOUND, "%s: no such file", path);
		return cg_err_set(err, CG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	}
	/* One byte more than the cap tells an oversized file from one exactly at it. */
	if ((buf = malloc(PROVENANCE_FILE_MAX + 1)) == NULL) {
		rc = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	len = fread(buf, 1, PROVENANCE_FILE_MAX + 1, f);
	if (ferror(f)) {
		rc = cg_err_set(err, CG_ERR_IO, "%s: read failed", path);
		goto out;
	}
	rc = provenance_parse(path, buf, len, out, err);
 out:
	free(buf);
	fclose(f);
	return rc;
}

int
provenance_sidecar_path(const char *export_path, char *out, size_t size, struct cg_err *err)
{
	if ((size_t)snprintf(out, size, "%s.meta.json", export_path) >= size)
		return cg_err_set(err, CG_ERR_ARG, "export path too long for its sidecar");
	return 0;
}
