/* cliopt.c - the one option parser of the command line (cliopt.h) */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cliopt.h"

#define CLIOPT_HELP 'h'
#define CLIOPT_BASE 1000        /* getopt_long's value for opts[i] is CLIOPT_BASE + i */

int
cliopt_number(const char *name, const char *s, unsigned long long min, unsigned long long max,
    unsigned long long *out)
{
	unsigned long long v = 0;
	char *end = NULL;

	/* Digits only: strtoull alone would take " 5", "+5" and even "-1" (as a huge number). */
	if (s[0] >= '0' && s[0] <= '9') {
		errno = 0;
		v = strtoull(s, &end, 10);
	}
	if (end == NULL || errno != 0 || *end != '\0' || v < min || v > max) {
		cli_error("--%s must be a number from %llu to %llu", name, min, max);
		return CLI_USAGE;
	}
	*out = v;
	return 0;
}

static int
cliopt_uint(const struct cliopt *o, const char *s)
{
	unsigned long long v;

	if (cliopt_number(o->name, s, o->min, o->max, &v) != 0)
		return -1;
	switch (o->size) {
	case 1: *(uint8_t *)o->dst = (uint8_t)v; break;
	case 2: *(uint16_t *)o->dst = (uint16_t)v; break;
	case 4: *(uint32_t *)o->dst = (uint32_t)v; break;
	case 8: *(uint64_t *)o->dst = (uint64_t)v; break;
	default: abort();   /* a table that names a type this does not know */
	}
	return 0;
}

/* getopt_long keeps global state: reset before each parse (the demo runs many commands in one process). */
static void
cliopt_getopt_reset(void)
{
	optind = 0;
	opterr = 1;
}

int
cliopt_parse(int argc, char **argv, const char *usage, const char *help, const struct cliopt *opts, int *argi,
    int *exit_code)
{
	struct option lo[CLIOPT_MAX + 2];
	unsigned char seen[CLIOPT_MAX];
	struct cliopt_list *l;
	size_t i, n;
	int c;

	for (n = 0; opts[n].name != NULL; n++) {
		if (n == CLIOPT_MAX)
			abort();    /* CLIOPT_MAX is too small for a table: a programmer's error */
		/* A destination of another type than its kind wants is a programmer's error too. */
		if ((opts[n].kind == CLIOPT_FLAG && opts[n].size != sizeof(int)) ||
		    (opts[n].kind == CLIOPT_STR && opts[n].size != sizeof(const char *)) ||
		    (opts[n].kind == CLIOPT_LIST && opts[n].size != sizeof(struct cliopt_list)) ||
		    (opts[n].kind == CLIOPT_UINT && opts[n].size < 8 && opts[n].max >> (opts[n].size * 8) != 0))
			abort();
		lo[n].name = opts[n].name;
		lo[n].has_arg = opts[n].kind == CLIOPT_FLAG ? no_argument : required_argument;
		lo[n].flag = NULL;
		lo[n].val = CLIOPT_BASE + (int)n;
	}
	lo[n] = (struct option){ "help", no_argument, NULL, CLIOPT_HELP };
	lo[n + 1] = (struct option){ NULL, 0, NULL, 0 };
	memset(seen, 0, sizeof(seen));
	*exit_code = CLI_USAGE;
	cliopt_getopt_reset();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == CLIOPT_HELP) {
			printf("usage: %s\n\n%s", usage, help);
			*exit_code = 0;
			return 1;
		}
		if (c < CLIOPT_BASE || (size_t)(c - CLIOPT_BASE) >= n) {
			cli_usage(usage, NULL);
			return 1;
		}
		i = (size_t)(c - CLIOPT_BASE);
		seen[i] = 1;
		switch (opts[i].kind) {
		case CLIOPT_FLAG: *(int *)opts[i].dst = 1; break;
		case CLIOPT_STR: *(const char **)opts[i].dst = optarg; break;
		case CLIOPT_UINT:
			if (cliopt_uint(&opts[i], optarg) != 0)
				return 1;
			break;
		case CLIOPT_LIST:
			l = opts[i].dst;
			if (l->n == l->max) {
				cli_error("at most %zu --%s options", l->max, opts[i].name);
				cli_usage(usage, NULL);
				return 1;
			}
			l->v[l->n++] = optarg;
			break;
		}
	}
	if (argi == NULL && optind < argc) {
		cli_usage(usage, "unexpected argument");
		return 1;
	}
	for (i = 0; i < n; i++) {
		if (opts[i].required && !seen[i]) {
			char name[64];

			snprintf(name, sizeof(name), "--%s", opts[i].name);
			cli_missing(usage, name);
			return 1;
		}
	}
	if (argi != NULL)
		*argi = optind;
	*exit_code = 0;
	return 0;
}
