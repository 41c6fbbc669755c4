/* policy_values.c - see policy.h; cells, time and generalization (policy_int.h) */
#include "policy/policy.h"
#include "policy/policy_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---- cells ---- */

static int
purpose_bit_n(const struct policy *p, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < p->npurposes; i++)
		if (strlen(p->purposes[i]) == len && memcmp(p->purposes[i], s, len) == 0)
			return (int)i;
	return -1;
}

static int
parse_purpose_list(const struct policy *p, const char *cell, size_t len, uint32_t *bits,
    struct cg_err *err)
{
	size_t start = 0, end, a, b;
	uint32_t acc = 0;
	int bit;

	*bits = 0;
	for (a = 0; a < len && (cell[a] == ' ' || cell[a] == '\t'); a++)
		;
	if (a == len)
		return 0;    /* blank: consent to nothing */
	while (start <= len) {
		const char *semi = memchr(cell + start, ';', len - start);

		end = semi != NULL ? (size_t)(semi - cell) : len;
		for (a = start; a < end && (cell[a] == ' ' || cell[a] == '\t'); a++)
			;
		for (b = end; b > a && (cell[b - 1] == ' ' || cell[b - 1] == '\t'); b--)
			;
		if (a == b)
			return cg_err_set(err, CG_ERR_FORMAT, "empty purpose in list");
		if ((bit = purpose_bit_n(p, cell + a, b - a)) < 0)
			return cg_err_set(err, CG_ERR_FORMAT, "unknown purpose");
		acc |= (uint32_t)1 << bit;
		if (semi == NULL)
			break;
		start = end + 1;
	}
	*bits = acc;
	return 0;
}

int
policy_value_parse(const struct policy *p, const struct policy_column *c, const char *cell,
    size_t len, struct policy_value *out, struct cg_err *err)
{
	size_t i;
	int r;

	memset(out, 0, sizeof(*out));
	if (len > POLICY_VALUE_MAX)
		return cg_err_set(err, CG_ERR_FORMAT, "longer than %d bytes", POLICY_VALUE_MAX);
	if (len == 0 && c->type != POLICY_TYPE_PURPOSES) {
		if (c->required)
			return cg_err_set(err, CG_ERR_FORMAT, "required");
		out->is_null = 1;
		return 0;
	}
	switch (c->type) {
	case POLICY_TYPE_STRING:
		if (memchr(cell, '\0', len) != NULL)
			return cg_err_set(err, CG_ERR_FORMAT, "contains a NUL byte");
		break;
	case POLICY_TYPE_INT:
		if ((r = policy_parse_i64(cell, len, &out->i)) == CG_ERR_LIMIT)
			return cg_err_set(err, CG_ERR_FORMAT, "integer out of range");
		if (r != 0)
			return cg_err_set(err, CG_ERR_FORMAT, "not an integer");
		if (c->has_min && out->i < c->min) {
			out->i = 0;
			return cg_err_set(err, CG_ERR_FORMAT, "below min %" PRId64, c->min);
		}
		if (c->has_max && out->i > c->max) {
			out->i = 0;
			return cg_err_set(err, CG_ERR_FORMAT, "above max %" PRId64, c->max);
		}
		return 0;
	case POLICY_TYPE_CATEGORY:
		for (i = 0; i < c->nvalues; i++)
			if (strlen(c->values[i]) == len && memcmp(c->values[i], cell, len) == 0)
				break;
		if (i == c->nvalues)
			return cg_err_set(err, CG_ERR_FORMAT, "not one of the category's values");
		break;
	case POLICY_TYPE_PURPOSES:
		return parse_purpose_list(p, cell, len, &out->bits, err);
	case POLICY_TYPE_TIMESTAMP:
		return policy_parse_time(cell, len, &out->i, err);
	default:
		return cg_err_set(err, CG_ERR_INTERNAL, "column has no type");
	}
	out->s = cell;
	out->slen = len;
	return 0;
}

/* ---- time ---- */

int
policy_digits(const char *s, size_t n)
{
	int v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static int
leap_year(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* H. Hinnant, "chrono-Compatible Low-Level Date Algorithms": days_from_civil. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int
policy_parse_time(const char *s, size_t len, int64_t *out, struct cg_err *err)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0, dim;
	size_t i;

	*out = 0;
	if (len < 10 || s[4] != '-' || s[7] != '-' || (y = policy_digits(s, 4)) < 0 ||
	    (mo = policy_digits(s + 5, 2)) < 0 || (d = policy_digits(s + 8, 2)) < 0)
		goto bad;
	if (mo < 1 || mo > 12)
		return cg_err_set(err, CG_ERR_FORMAT, "timestamp month out of range");
	dim = mdays[mo - 1] + (mo == 2 && leap_year(y));
	if (d < 1 || d > dim)
		return cg_err_set(err, CG_ERR_FORMAT, "timestamp day out of range");
	i = 10;
	if (i < len) {
		if (len < 19 || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':' ||
		    (h = policy_digits(s + 11, 2)) < 0 || (mi = policy_digits(s + 14, 2)) < 0 ||
		    (sec = policy_digits(s + 17, 2)) < 0)
			goto bad;
		if (h > 23 || mi > 59 || sec > 59)
			return cg_err_set(err, CG_ERR_FORMAT, "timestamp time of day out of range");
		i = 19;
		if (i < len && s[i] == '.') {
			size_t f = ++i;

			while (i < len && s[i] >= '0' && s[i] <= '9')
				i++;
			if (i == f || i - f > 9)
				goto bad;
		}
		if (i < len && s[i] == 'Z') {
			i++;
		} else if (i < len && (s[i] == '+' || s[i] == '-')) {
			sign = s[i] == '+' ? 1 : -1;
			if (len - i < 6 || s[i + 3] != ':' || (oh = policy_digits(s + i + 1, 2)) < 0 ||
			    (om = policy_digits(s + i + 4, 2)) < 0)
				goto bad;
			if (oh > 23 || om > 59)
				return cg_err_set(err, CG_ERR_FORMAT, "timestamp offset out of range");
			i += 6;
		}
		if (i != len)
			goto bad;
	}
	/* Local time = UTC + offset, so UTC = local - offset. */
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
	    (int64_t)sign * (oh * 3600 + om * 60);
	return 0;
bad:
	return cg_err_set(err, CG_ERR_FORMAT, "not an ISO 8601 timestamp "
	    "(YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM])");
}

/* ---- generalization ---- */

int
policy_generalize_int(const struct policy_column *c, int64_t v, char *out, size_t out_size)
{
	if (out_size > 0)
		out[0] = '\0';
	if (c->gen != POLICY_GEN_BAND || c->band <= 0)
		return CG_ERR_ARG;
	return policy_generalize_band(c->band, v, out, out_size);
}

int
policy_generalize_band(int64_t band, int64_t v, char *out, size_t out_size)
{
	int64_t q, lo, hi;
	int n;

	if (out_size > 0)
		out[0] = '\0';
	if (band <= 0)
		return CG_ERR_ARG;
	/* Floor division, so that -1 with band 10 is in -10..-1, not 0..9. */
	q = v / band;
	if (v % band != 0 && v < 0)
		q--;
	/* At the ends of the int64 range the band is cut to what int64 can hold. */
	if (__builtin_mul_overflow(q, band, &lo))
		lo = INT64_MIN;
	if (__builtin_mul_overflow(q + 1, band, &hi))
		hi = INT64_MAX;
	else
		hi--;
	n = snprintf(out, out_size, "%" PRId64 "-%" PRId64, lo, hi);
	if (n < 0 || (size_t)n >= out_size) {
		if (out_size > 0)
			out[0] = '\0';
		return CG_ERR_LIMIT;
	}
	return 0;
}

int
policy_generalize_str(const struct policy_column *c, const char *v, size_t len, char *out,
    size_t out_size)
{
	const char *g;
	size_t i, glen;

	if (out_size > 0)
		out[0] = '\0';
	if (c->gen != POLICY_GEN_MAP || c->other == NULL)
		return CG_ERR_ARG;
	g = c->other;
	for (i = 0; i < c->nmap; i++)
		if (strlen(c->map[i].from) == len && memcmp(c->map[i].from, v, len) == 0) {
			g = c->map[i].to;
			break;
		}
	glen = strlen(g);
	if (glen >= out_size)
		return CG_ERR_LIMIT;
	memcpy(out, g, glen + 1);
	return 0;
}

int
policy_column_shared(const struct policy_column *c, int bit)
{
	if (c->role != POLICY_ROLE_FEATURE && c->role != POLICY_ROLE_QUASI)
		return 0;
	if (!c->has_purposes)
		return 1;
	if (bit < 0)
		return c->purposes != 0;
	return bit < 32 && (c->purposes & (UINT32_C(1) << bit)) != 0;
}
