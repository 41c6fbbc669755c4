/* activation.c - see activation.h */
#include "analytics/activation.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>

/* A finite number at key (in obj), or CG_ERR_FORMAT naming the file and the key. */
static int
act_num(json_t *obj, const char *key, const char *path, double *out, struct cg_err *err)
{
	json_t *v = obj != NULL ? json_object_get(obj, key) : NULL;

	if (v == NULL || !json_is_number(v) || !isfinite(json_number_value(v)))
		return cg_err_set(err, CG_ERR_FORMAT, "%s: no number '%s'", path, key);
	*out = json_number_value(v);
	return 0;
}

static int
act_str(json_t *obj, const char *key, const char *path, char *out, size_t size, struct cg_err *err)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL || !json_is_string(v))
		return cg_err_set(err, CG_ERR_FORMAT, "%s: no string '%s'", path, key);
	snprintf(out, size, "%s", json_string_value(v));
	return 0;
}

static int
act_interval(json_t *obj, const char *path, struct activation_interval *iv, struct cg_err *err)
{
	int r;

	if ((r = act_num(obj, "est", path, &iv->est, err)) != 0 || (r = act_num(obj, "lo", path, &iv->lo, err)) != 0 ||
	    (r = act_num(obj, "hi", path, &iv->hi, err)) != 0)
		return r;
	return 0;
}

static json_t *
act_read(const char *path, struct cg_err *err)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);

	if (j == NULL) {
		FILE *f = fopen(path, "r");

		if (f == NULL)
			cg_err_set(err, CG_ERR_IO, "%s: cannot read", path);
		else
			cg_err_set(err, CG_ERR_FORMAT, "%s:%d: %s", path, je.line, je.text);
		if (f != NULL)
			fclose(f);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		cg_err_set(err, CG_ERR_FORMAT, "%s: not a JSON object", path);
		return NULL;
	}
	return j;
}

static int
act_lift(json_t *j, const char *path, struct activation *o, struct cg_err *err)
{
	static const char *const arms[2] = { "control", "treatment" };
	json_t *lift = json_object_get(j, "lift"), *rel;
	int r, i;

	if ((r = act_str(j, "experiment", path, o->experiment, sizeof(o->experiment), err)) != 0 ||
	    (r = act_str(j, "campaign_partner", path, o->partner, sizeof(o->partner), err)) != 0 ||
	    (r = act_num(j, "rho", path, &o->rho, err)) != 0 ||
	    (r = act_num(j, "confidence", path, &o->confidence, err)) != 0 ||
	    (r = act_num(j, "value_cap", path, &o->value_cap, err)) != 0)
		return r;
	for (i = 0; i < 2; i++) {
		json_t *a = json_object_get(j, arms[i]);

		if ((r = act_num(a, "n", path, &o->n[i], err)) != 0 || (r = act_num(a, "rate", path, &o->rate[i], err)) != 0 ||
		    (r = act_num(a, "value_mean", path, &o->value_mean[i], err)) != 0)
			return r;
	}
	if (lift == NULL || !json_is_object(lift))
		return cg_err_set(err, CG_ERR_FORMAT, "%s: no object 'lift'", path);
	if ((r = act_interval(json_object_get(lift, "rate"), path, &o->rate_diff, err)) != 0 ||
	    (r = act_interval(json_object_get(lift, "value_per_subject"), path, &o->value_diff, err)) != 0)
		return r;
	rel = json_object_get(lift, "rate_relative");
	if (rel != NULL && json_is_object(rel)) {
		if ((r = act_interval(rel, path, &o->rate_rel, err)) != 0)
			return r;
		o->rel_ok = 1;
	}
	o->have_lift = 1;
	return 0;
}

int
activation_load(const char *audience_path, const char *lift_path, struct activation *o, struct cg_err *err)
{
	json_t *j;
	int r = 0;

	memset(o, 0, sizeof(*o));
	if (audience_path != NULL) {
		if ((j = act_read(audience_path, err)) == NULL)
			return err->code;
		if ((r = act_str(j, "audience", audience_path, o->audience, sizeof(o->audience), err)) == 0 &&
		    (r = act_num(j, "noisy_size", audience_path, &o->audience_noisy, err)) == 0 &&
		    (r = act_num(j, "charged_rho", audience_path, &o->audience_rho, err)) == 0)
			o->have_audience = 1;
		json_decref(j);
		if (r != 0)
			return r;
	}
	if (lift_path != NULL) {
		if ((j = act_read(lift_path, err)) == NULL)
			return err->code;
		r = act_lift(j, lift_path, o, err);
		json_decref(j);
	}
	return r;
}
