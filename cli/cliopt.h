/*
 * cliopt.h - one declarative option table per command, parsed by one helper
 * (getopt_long underneath), so that every command spells and rejects its
 * options the same way:
 *
 *   an unknown option                getopt's message, then the usage (exit 2)
 *   --help (or -h)                   "usage: USAGE\n\nHELP" on stdout (exit 0)
 *   a required option left out       "missing required option --x", the usage
 *   a number out of range            "--x must be a number from MIN to MAX"
 *   a positional argument, if none   "unexpected argument", the usage
 *
 * Destinations keep their value when an option is absent: the caller sets the
 * defaults before parsing.  Strings point into argv (not copied).  A table is
 * terminated by CLIOPT_END.  Options whose meaning depends on other options
 * (one of two, X goes with Y) are still checked by the command after parsing.
 */
#ifndef CG_CLIOPT_H
#define CG_CLIOPT_H

#include <stddef.h>

enum cliopt_kind {
	CLIOPT_FLAG,   /* no argument; sets the int at dst to 1 */
	CLIOPT_STR,    /* const char * at dst */
	CLIOPT_UINT,   /* an unsigned integer of `size` bytes (1, 2, 4 or 8) at dst, from min to max */
	CLIOPT_LIST,   /* repeatable: appended to the struct cliopt_list at dst */
};

/* A repeatable string option: v[0..n) point into argv; at most max of them. */
struct cliopt_list {
	const char **v;
	size_t n, max;
};

struct cliopt {
	const char *name;        /* without the leading "--"; NULL ends the table */
	enum cliopt_kind kind;
	void *dst;
	size_t size;             /* CLIOPT_UINT: sizeof(*dst) */
	unsigned long long min, max;
	int required;
};

#define CLIOPT_FLAG(n, p)       { (n), CLIOPT_FLAG, (p), sizeof(*(p)), 0, 0, 0 }
#define CLIOPT_STR(n, p)        { (n), CLIOPT_STR, (p), sizeof(*(p)), 0, 0, 0 }
#define CLIOPT_REQ(n, p)        { (n), CLIOPT_STR, (p), sizeof(*(p)), 0, 0, 1 }
#define CLIOPT_UINT(n, p, lo, hi) { (n), CLIOPT_UINT, (p), sizeof(*(p)), (lo), (hi), 0 }
#define CLIOPT_UREQ(n, p, lo, hi) { (n), CLIOPT_UINT, (p), sizeof(*(p)), (lo), (hi), 1 }
#define CLIOPT_LIST(n, p)       { (n), CLIOPT_LIST, (p), sizeof(*(p)), 0, 0, 0 }
/* The client options every network command shares (CLI_CLIENT_USAGE), into a struct client_opts. */
#define CLIOPT_CLIENT(co) \
	CLIOPT_REQ("gateway", &(co)->gateway), CLIOPT_REQ("ca", &(co)->ca), CLIOPT_REQ("cert", &(co)->cert), \
	CLIOPT_REQ("key", &(co)->key), CLIOPT_UINT("timeout", &(co)->timeout_s, 0, 3600)
/* The same, not required (commands where only some subcommands reach a gateway). */
#define CLIOPT_CLIENT_OPT(co) \
	CLIOPT_STR("gateway", &(co)->gateway), CLIOPT_STR("ca", &(co)->ca), CLIOPT_STR("cert", &(co)->cert), \
	CLIOPT_STR("key", &(co)->key), CLIOPT_UINT("timeout", &(co)->timeout_s, 0, 3600)
#define CLIOPT_END              { NULL, CLIOPT_FLAG, NULL, 0, 0, 0, 0 }

/*
 * Parse argv[1..argc) against opts (at most CLIOPT_MAX entries).  Positional
 * arguments are refused unless argi is given, which then receives the index
 * of the first (argv is permuted: they come last).  Returns 0 when the
 * command should go on, or 1 when it should return *exit_code at once (0
 * after --help, CLI_USAGE after an error, already printed).
 */
/* A number of an option parsed by hand ("--NAME must be a number from MIN to MAX"); 0 or CLI_USAGE. */
int cliopt_number(const char *name, const char *s, unsigned long long min, unsigned long long max,
    unsigned long long *out) __attribute__((warn_unused_result, nonnull(1, 2, 5)));

#define CLIOPT_MAX 48
int cliopt_parse(int argc, char **argv, const char *usage, const char *help, const struct cliopt *opts, int *argi,
    int *exit_code) __attribute__((warn_unused_result, nonnull(2, 3, 4, 5, 7)));

#endif
