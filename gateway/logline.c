/* logline.c - see logline.h */
#include "gateway/logline.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <jansson.h>

char *
logline_vmake(const char *level, const char *event, va_list ap)
{
	json_t *o = json_object();
	struct timespec ts;
	struct tm tm;
	char when[96], *line = NULL;
	const char *k;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(ts.tv_nsec / 1000000 % 1000));
	if (o != NULL) {
		json_object_set_new(o, "time", json_string(when));
		json_object_set_new(o, "level", json_string(level));
		json_object_set_new(o, "event", json_string(event));
	}
	while ((k = va_arg(ap, const char *)) != NULL) {
		json_t *v = va_arg(ap, json_t *);

		if (o != NULL && v != NULL)
			json_object_set_new(o, k, v);
		else
			json_decref(v);
	}
	if (o != NULL)
		line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	return line;
}
